//! Pages: a free list of fixed-size pages per pool, and a sequence's page
//! table in one pool. Pages are indices into every layer's buffers of a pool.

#[derive(Debug)]
pub(crate) struct PageAllocator {
    free: Vec<u32>,
    total: u32,
}

impl PageAllocator {
    pub fn new(total: u32) -> Self {
        PageAllocator { free: (0..total).rev().collect(), total }
    }

    /// `n` pages, or `None` (and nothing taken) when fewer are free.
    pub fn alloc(&mut self, n: usize) -> Option<Vec<u32>> {
        let keep = self.free.len().checked_sub(n)?;
        Some(self.free.split_off(keep))
    }

    pub fn release(&mut self, pages: impl IntoIterator<Item = u32>) {
        self.free.extend(pages);
    }

    pub fn free(&self) -> usize {
        self.free.len()
    }

    pub fn used(&self) -> usize {
        self.total as usize - self.free.len()
    }

    pub fn total(&self) -> u32 {
        self.total
    }
}

/// The pages a sequence holds in one pool: `pages[i]` holds its logical page
/// `first + i` (tokens `(first + i) * page_size..`). Pages before `first`
/// were released: a sliding window no longer reaches them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PageTable {
    pub first: u32,
    pub pages: Vec<u32>,
}

impl PageTable {
    /// One past the last logical page held.
    pub fn end(&self) -> u32 {
        self.first + self.pages.len() as u32
    }

    /// Drops the pages before logical page `first` and those from `end` on,
    /// returning them.
    pub fn keep(&mut self, first: u32, end: u32) -> Vec<u32> {
        let end = end.clamp(self.first, self.end());
        let mut out = self.pages.split_off((end - self.first) as usize);
        let drop = (first.clamp(self.first, end) - self.first) as usize;
        out.extend(self.pages.drain(..drop));
        self.first += drop as u32;
        if self.pages.is_empty() {
            self.first = 0;
        }
        out
    }

    /// The physical page of every logical page up to `end`, `filler` for
    /// released ones.
    pub fn logical(&self, end: u32, filler: u32) -> impl Iterator<Item = u32> + '_ {
        (0..end).map(move |p| {
            p.checked_sub(self.first).and_then(|i| self.pages.get(i as usize)).copied().unwrap_or(filler)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_is_all_or_nothing_and_release_reuses() {
        let mut a = PageAllocator::new(4);
        let p = a.alloc(3).unwrap();
        assert_eq!((a.used(), a.free()), (3, 1));
        assert!(a.alloc(2).is_none());
        assert_eq!(a.free(), 1);
        a.release(p.clone());
        let q = a.alloc(4).unwrap();
        assert!(p.iter().all(|x| q.contains(x)));
    }

    #[test]
    fn a_table_keeps_a_range_of_logical_pages() {
        let mut t = PageTable { first: 0, pages: vec![10, 11, 12, 13, 14] };
        assert_eq!(t.keep(2, 4), vec![14, 10, 11]);
        assert_eq!(t, PageTable { first: 2, pages: vec![12, 13] });
        assert_eq!(t.logical(5, 0).collect::<Vec<_>>(), vec![0, 0, 12, 13, 0]);
        // Keeping nothing resets the table.
        assert_eq!(t.keep(0, 0), vec![12, 13]);
        assert_eq!(t, PageTable::default());
    }
}

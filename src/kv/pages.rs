//! A free list of fixed-size pages. Pages are indices into every layer's pool.

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
}

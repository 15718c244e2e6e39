//! Dispatch sizes within WebGPU's per-axis limit, and index bounds.

use crate::{Error, Result};

/// Workgroups for `groups` units of work, as x * y under the 65535-per-axis
/// limit; kernels recover the unit as `wid.y * nwg.x + wid.x`.
pub(crate) fn grid(groups: u64, what: &'static str) -> Result<[u32; 2]> {
    const AXIS: u64 = 65535;
    if groups > AXIS * AXIS {
        return Err(Error::BatchTooLarge { what, got: groups, max: AXIS * AXIS });
    }
    let x = groups.clamp(1, AXIS);
    Ok([x as u32, groups.div_ceil(x).max(1) as u32])
}

/// Errors unless `count` elements can be indexed with u32 in WGSL, with
/// headroom for a workgroup's worth of threads past the end.
pub(crate) fn check_index(what: &'static str, count: u64) -> Result<()> {
    const MAX: u64 = 1 << 31;
    if count > MAX {
        return Err(Error::BatchTooLarge { what, got: count, max: MAX });
    }
    Ok(())
}

/// Workgroups of 64 threads covering `threads`, folded into x and y.
pub(crate) fn unit_groups(threads: u64) -> [u32; 3] {
    let groups = threads.div_ceil(64).max(1);
    let x = groups.min(65535);
    [x as u32, groups.div_ceil(x) as u32, 1]
}

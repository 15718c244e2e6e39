//! Host side of the kernels of an attention step over the paged cache:
//! writing K/V (`append`), RoPE on queries (`rope`), attention and the merge
//! of its key splits (`attend`). Each file holds its kernels' specs and
//! dispatch. They sit above the rooms they join (the problem and its
//! workgroup geometry in `attention`, the cache and plans in `kv`, the
//! frequency tables in `rope`), so those rooms depend only downward.

mod append;
mod attend;
mod rope;

pub(crate) use append::APPEND;
pub use attend::attend;
pub(crate) use attend::{ATTEND, MERGE};
pub(crate) use rope::ROPE;

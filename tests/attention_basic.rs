mod common;
use common::*;
use wgqa::{AttentionConfig, DType};

#[test]
fn smoke_gqa_prefill_and_decode() {
    let cfg = AttentionConfig::new(8, 2, 64).unwrap();
    check("prefill", &Run::new(cfg.clone(), vec![37, 100]));
    check("decode", &Run::new(cfg.clone(), vec![20, 9]).decode_after(5));
    check("last", &Run::new(cfg.clone(), vec![300, 9]).last(3));
    check("f16", &Run::new(cfg.with_dtype(DType::F16), vec![70]));
}

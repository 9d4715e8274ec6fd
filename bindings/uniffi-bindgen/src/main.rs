//! `uniffi-bindgen`: uniffi's generator, built from the exact uniffi the library links.
//!
//! Run by `scripts/bindings` in library mode on the just-built `libdonghanh` (never on its own:
//! bindings generated from another build of the library crash instead of erroring).

fn main() {
    uniffi::uniffi_bindgen_main();
}

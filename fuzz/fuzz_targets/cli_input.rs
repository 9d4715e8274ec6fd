//! The `donghanh` CLI's argument parsers (`donghanh_core::input`: ids, dates, instants, sex)
//! and the report period parser the CLIs and the server share. Each accepts or refuses
//! cleanly, and what it accepts prints back to text it accepts again as the same value.

#![no_main]

use donghanh_core::input::{parse_date, parse_id, parse_instant, parse_sex};
use donghanh_core::report::Period;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = parse_id(text) {
        assert_eq!(parse_id(&id.to_string()), Ok(id));
    }
    if let Ok(day) = parse_date(text) {
        assert_eq!(parse_date(&day.format("%Y-%m-%d").to_string()), Ok(day));
    }
    if let Ok(t) = parse_instant(text) {
        assert_eq!(parse_instant(&t.to_rfc3339()), Ok(t));
    }
    let _ = parse_sex(text);
    let _ = Period::parse(text);
});

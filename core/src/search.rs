//! Name normalisation for search without plaintext (DESIGN.md §4).
//!
//! Field workers type names without diacritics ("nguyen van an") on phones whose keyboards make
//! Vietnamese marks slow, so a search must find "Nguyễn Văn An". [`fold`] applies NFKC (so
//! full-width and compatibility forms compare equal), lower-cases, strips every combining mark
//! after canonical decomposition (tones, and the breve, circumflex and horn of ă â ê ô ơ ư),
//! and maps đ to d (đ has no decomposition).
//!
//! The blind index stores, for each word of a name, a keyed hash of each of its prefixes of at
//! least [`MIN_PREFIX`] characters, so "ngu" finds "Nguyễn". Without the index key the tokens
//! reveal only that two people share a word prefix. Matches are always confirmed on the
//! decrypted name, so a token collision never returns a wrong person.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Shortest word prefix that is indexed; shorter query words fall back to a scan.
pub const MIN_PREFIX: usize = 2;
/// Longest prefix indexed: longer words are matched on their first characters, then confirmed.
pub const MAX_PREFIX: usize = 16;

/// Folds text for comparison: NFKC, lower case, no diacritics, đ → d.
#[must_use]
pub fn fold(text: &str) -> String {
    text.nfkc()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

/// The folded words of a text (split on anything that is not a letter or a digit).
#[must_use]
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The index terms of a name: every prefix of every word, from [`MIN_PREFIX`] to
/// [`MAX_PREFIX`] characters, deduplicated.
#[must_use]
pub fn index_terms(name: &str) -> Vec<String> {
    let mut terms: Vec<String> = words(name)
        .iter()
        .flat_map(|w| {
            let chars: Vec<char> = w.chars().collect();
            (MIN_PREFIX..=chars.len().min(MAX_PREFIX))
                .map(move |n| chars[..n].iter().collect::<String>())
        })
        .collect();
    terms.sort();
    terms.dedup();
    terms
}

/// The term a query word is looked up by, or `None` when it is too short to be indexed.
#[must_use]
pub fn query_term(word: &str) -> Option<String> {
    let n = word.chars().count();
    (n >= MIN_PREFIX).then(|| word.chars().take(MAX_PREFIX).collect())
}

/// Whether a name matches a query: every query word is a prefix of some word of the name.
#[must_use]
pub fn matches(name: &str, query: &str) -> bool {
    let name_words = words(name);
    words(query)
        .iter()
        .all(|q| name_words.iter().any(|w| w.starts_with(q.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_vietnamese_diacritics_and_case() {
        assert_eq!(fold("Nguyễn Văn Đức"), "nguyen van duc");
        assert_eq!(fold("Trần Thị Ánh Hường"), "tran thi anh huong");
        assert_eq!(fold("ĐẶNG ỨNG"), "dang ung");
        // Decomposed input (as some keyboards send it) folds the same as precomposed.
        assert_eq!(fold("Nguye\u{302}\u{303}n"), "nguyen");
        // Full-width letters fold by NFKC.
        assert_eq!(fold("ＡＢ"), "ab");
    }

    #[test]
    fn query_without_diacritics_finds_name() {
        assert!(matches("Nguyễn Văn An", "nguyen"));
        assert!(matches("Nguyễn Văn An", "NGUYEN an"));
        assert!(matches("Nguyễn Văn An", "ngu va"));
        assert!(!matches("Nguyễn Văn An", "nguyen binh"));
        assert!(matches("Lê Thị Hồng", "hong"));
    }

    #[test]
    fn index_terms_cover_prefixes() {
        let t = index_terms("Võ An");
        assert_eq!(t, vec!["an", "vo"]);
        let t = index_terms("Nguyễn");
        assert!(t.contains(&"ng".to_owned()) && t.contains(&"nguyen".to_owned()));
        assert!(!t.contains(&"n".to_owned()));
        assert_eq!(query_term("a"), None);
    }
}

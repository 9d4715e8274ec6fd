//! The audit log: every access to case data, hash-chained (DESIGN.md §5).
//!
//! An entry says who (user, device), what (`action`: `edit`, `sync_down`, …), which data
//! (scope, and the record for single-record actions, or a count), when, and for what purpose.
//! Its hash is SHA-256 over a fixed, length-prefixed encoding of its fields and the previous
//! entry's hash, starting from 32 zero bytes. [`verify`] recomputes the chain: the first entry
//! whose stored `prev` or `hash` disagrees is where the log was edited, cut or spliced.

use ring::digest;

/// One audit entry, before hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log (1, 2, …).
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// The user's id bytes.
    pub user: [u8; 16],
    /// The device's id bytes.
    pub device: [u8; 16],
    /// What was done.
    pub action: String,
    /// The scope touched.
    pub scope: String,
    /// The record, for single-record actions.
    pub record: Option<[u8; 16]>,
    /// How many records.
    pub count: u64,
    /// Why (e.g. `sync`, or a break-the-glass reason's code).
    pub purpose: String,
}

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

fn field(ctx: &mut digest::Context, bytes: &[u8]) {
    ctx.update(&(bytes.len() as u64).to_be_bytes());
    ctx.update(bytes);
}

/// The entry's hash, chained to `prev`.
#[must_use]
pub fn hash(entry: &Entry, prev: &[u8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    field(&mut ctx, b"donghanh-audit-v1");
    field(&mut ctx, prev);
    field(&mut ctx, &entry.seq.to_be_bytes());
    field(&mut ctx, &entry.at.to_be_bytes());
    field(&mut ctx, &entry.user);
    field(&mut ctx, &entry.device);
    field(&mut ctx, entry.action.as_bytes());
    field(&mut ctx, entry.scope.as_bytes());
    field(&mut ctx, entry.record.as_ref().map_or(&[][..], |r| &r[..]));
    field(&mut ctx, &entry.count.to_be_bytes());
    field(&mut ctx, entry.purpose.as_bytes());
    ctx.finish().as_ref().to_vec()
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry hashes to what is stored and links to the one before.
    Intact {
        /// Entries checked.
        entries: u64,
    },
    /// The chain breaks at this entry (it, or one before it, was changed, inserted or removed).
    BrokenAt {
        /// The sequence number where the check failed.
        seq: u64,
    },
}

/// Checks entries given in `seq` order with their stored `prev` and `hash`.
pub fn verify<'a>(rows: impl IntoIterator<Item = (&'a Entry, &'a [u8], &'a [u8])>) -> Verdict {
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let mut n = 0;
    for (expected_seq, (entry, stored_prev, stored_hash)) in (1u64..).zip(rows) {
        if entry.seq != expected_seq || stored_prev != prev.as_slice() {
            return Verdict::BrokenAt { seq: entry.seq };
        }
        let h = hash(entry, &prev);
        if h.as_slice() != stored_hash {
            return Verdict::BrokenAt { seq: entry.seq };
        }
        prev = h;
        n = expected_seq;
    }
    Verdict::Intact { entries: n }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, count: u64) -> Entry {
        Entry {
            seq,
            at: 1_700_000_000,
            user: [1; 16],
            device: [2; 16],
            action: "sync_down".into(),
            scope: "person:x".into(),
            record: None,
            count,
            purpose: "sync".into(),
        }
    }

    fn chain(n: u64) -> Vec<(Entry, Vec<u8>, Vec<u8>)> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|i| {
                let e = entry(i, i);
                let h = hash(&e, &prev);
                let row = (e, prev.clone(), h.clone());
                prev = h;
                row
            })
            .collect()
    }

    fn check(rows: &[(Entry, Vec<u8>, Vec<u8>)]) -> Verdict {
        verify(rows.iter().map(|(e, p, h)| (e, p.as_slice(), h.as_slice())))
    }

    #[test]
    fn an_intact_chain_verifies_and_any_change_breaks_it() {
        let rows = chain(5);
        assert_eq!(check(&rows), Verdict::Intact { entries: 5 });
        let mut edited = rows.clone();
        edited[2].0.count = 99;
        assert_eq!(check(&edited), Verdict::BrokenAt { seq: 3 });
        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(check(&removed), Verdict::BrokenAt { seq: 3 });
        let mut rehashed = rows.clone();
        // Rewriting one entry's hash to match its edit still breaks the next link.
        rehashed[1].0.action = "edit".into();
        rehashed[1].2 = hash(&rehashed[1].0, &rehashed[1].1);
        assert_eq!(check(&rehashed), Verdict::BrokenAt { seq: 3 });
        let mut truncated_front = rows;
        truncated_front.remove(0);
        assert_eq!(check(&truncated_front), Verdict::BrokenAt { seq: 2 });
    }
}

//! [`AnyRecord`]: one record of any kind, decoded from its JSON by its kind code.
//!
//! Sync moves records as JSON tagged with a kind code; both ends must turn them back into typed
//! entities, check them with the same rules and read their scope. This is the one place that
//! maps a [`RecordKind`] to its entity type, so the device and the server cannot disagree.
//! A decoding failure names the kind, never a value (serde's messages quote values).

use chrono::NaiveDate;
use serde_json::Value;

use super::{
    AbsenceReport, AccessLog, Assignment, Attendance, ConsentRecord, DomainError, DrugTest,
    Episode, FollowUpTask, Id, Person, Record, RecordKind, Referral, RelapseEvent, Scope, Session,
    SupervisionNote, SupportBenefit, Transfer, ValidationContext, Visit,
};

macro_rules! any_record {
    ($($variant:ident($ty:ty)),+ $(,)?) => {
        /// A record of any kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyRecord {
            $(
                #[doc = concat!("A [`", stringify!($ty), "`].")]
                $variant($ty),
            )+
        }

        impl AnyRecord {
            /// Decodes `json` as a record of `kind`.
            pub fn from_json(kind: RecordKind, json: Value) -> Result<Self, DomainError> {
                let invalid = || DomainError::InvalidFormat {
                    field: kind.code(),
                    expected: "a record of this kind",
                };
                Ok(match kind {
                    $(RecordKind::$variant => {
                        AnyRecord::$variant(serde_json::from_value(json).map_err(|_| invalid())?)
                    })+
                })
            }

            /// The record as JSON.
            pub fn to_json(&self) -> Result<Value, DomainError> {
                let result = match self {
                    $(AnyRecord::$variant(r) => serde_json::to_value(r),)+
                };
                result.map_err(|_| DomainError::InvalidFormat {
                    field: self.kind().code(),
                    expected: "a record of this kind",
                })
            }

            /// Its kind.
            #[must_use]
            pub fn kind(&self) -> RecordKind {
                match self {
                    $(AnyRecord::$variant(_) => <$ty as Record>::KIND,)+
                }
            }

            /// Its id.
            #[must_use]
            pub fn id(&self) -> Id {
                match self {
                    $(AnyRecord::$variant(r) => r.id(),)+
                }
            }

            /// Its scope.
            #[must_use]
            pub fn scope(&self) -> Scope {
                match self {
                    $(AnyRecord::$variant(r) => r.scope(),)+
                }
            }

            /// The person it is about, if any.
            #[must_use]
            pub fn subject(&self) -> Option<Id> {
                match self {
                    $(AnyRecord::$variant(r) => r.subject(),)+
                }
            }

            /// Its coarse date.
            #[must_use]
            pub fn day(&self) -> Option<NaiveDate> {
                match self {
                    $(AnyRecord::$variant(r) => r.day(),)+
                }
            }

            /// Its coarse state code.
            #[must_use]
            pub fn state(&self) -> Option<&'static str> {
                match self {
                    $(AnyRecord::$variant(r) => r.state(),)+
                }
            }

            /// Checks it with its entity's rules.
            pub fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
                match self {
                    $(AnyRecord::$variant(r) => r.validate(ctx),)+
                }
            }
        }
    };
}

any_record!(
    Person(Person),
    Episode(Episode),
    Assignment(Assignment),
    Visit(Visit),
    DrugTest(DrugTest),
    FollowUpTask(FollowUpTask),
    Session(Session),
    Attendance(Attendance),
    SupervisionNote(SupervisionNote),
    Referral(Referral),
    SupportBenefit(SupportBenefit),
    RelapseEvent(RelapseEvent),
    AbsenceReport(AbsenceReport),
    Transfer(Transfer),
    Consent(ConsentRecord),
    AccessLog(AccessLog),
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sex;

    #[test]
    fn every_kind_decodes_to_its_own_entity_and_back() {
        let p = Person::new(
            "Nguyễn Văn An",
            NaiveDate::from_ymd_opt(1990, 1, 2).unwrap(),
            Sex::Male,
        );
        let json = serde_json::to_value(&p).unwrap();
        let any = AnyRecord::from_json(RecordKind::Person, json.clone()).unwrap();
        assert_eq!(any, AnyRecord::Person(p.clone()));
        assert_eq!(any.kind(), RecordKind::Person);
        assert_eq!(any.scope(), Scope::Person(p.id));
        assert_eq!(any.to_json().unwrap(), json);
        // Every kind code maps to a variant of the same kind.
        for kind in RecordKind::ALL {
            let err = AnyRecord::from_json(kind, Value::Null).unwrap_err();
            assert_eq!(
                err,
                DomainError::InvalidFormat {
                    field: kind.code(),
                    expected: "a record of this kind"
                }
            );
        }
    }

    #[test]
    fn decoding_errors_never_quote_the_value() {
        let bad = serde_json::json!({"full_name": "Trần Bí Mật", "birth_date": "không phải ngày"});
        let err = AnyRecord::from_json(RecordKind::Person, bad).unwrap_err();
        assert!(!err.to_string().contains("Bí Mật") && !err.to_string().contains("không"));
    }
}

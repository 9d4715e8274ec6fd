//! Follow-up tasks and supervision notes: how supervisors steer the team's work.
//!
//! Decisions:
//! - A task is about one person. It lives in that person's scope by default; a supervisor's
//!   team-level task sets `team`, and then lives in the team's scope so the whole team sees it
//!   (DESIGN.md §3). The scope is fixed at creation: the store refuses to move a record between
//!   scopes, so `team` must not change afterwards.
//! - `open → done | cancelled`, nothing else; "overdue" is derived from the due date and today,
//!   never stored, so it cannot go stale.
//! - A supervision note belongs to the team's scope. It must say something: concerns, agreed
//!   actions, or both. Its text is redacted from `Debug`.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::rules::{
    LIST_MAX, Redacted, coded_enum, date_not_in_future, distinct_list, note, required_note,
};
use super::{DomainError, Id, Record, RecordKind, Scope, ValidationContext};

coded_enum! {
    /// Where a task stands.
    pub enum TaskStatus {
        /// To do.
        Open => "open",
        /// Done.
        Done => "done",
        /// No longer needed.
        Cancelled => "cancelled",
    }
}

impl TaskStatus {
    /// Whether the machine allows `self → to`.
    #[must_use]
    pub fn can_become(self, to: TaskStatus) -> bool {
        matches!(
            (self, to),
            (TaskStatus::Open, TaskStatus::Done | TaskStatus::Cancelled)
        )
    }
}

/// Something a worker must do for a person by a date.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpTask {
    /// Record id.
    pub id: Id,
    /// The person the task is about.
    pub person: Id,
    /// The episode, if any.
    #[serde(default)]
    pub episode: Option<Id>,
    /// Who must do it (a user).
    #[serde(default)]
    pub assignee: Option<Id>,
    /// Due date.
    pub due: NaiveDate,
    /// What and why.
    pub reason: String,
    /// Who created it (a user).
    #[serde(default)]
    pub created_by: Option<Id>,
    /// Where it stands.
    pub status: TaskStatus,
    /// For a team-level task, the team whose scope holds it (set at creation only).
    #[serde(default)]
    pub team: Option<Id>,
}

impl FollowUpTask {
    /// An open task about `person`, due on `due`.
    #[must_use]
    pub fn new(person: Id, due: NaiveDate, reason: impl Into<String>) -> Self {
        Self {
            id: Id::new(),
            person,
            episode: None,
            assignee: None,
            due,
            reason: reason.into(),
            created_by: None,
            status: TaskStatus::Open,
            team: None,
        }
    }

    /// Moves the status along the machine. Nothing changes on error.
    ///
    /// # Errors
    /// `InvalidTransition` unless the task is open and `to` is done or cancelled.
    pub fn transition(&mut self, to: TaskStatus) -> Result<(), DomainError> {
        if !self.status.can_become(to) {
            return Err(DomainError::InvalidTransition {
                from: self.status.code(),
                to: to.code(),
            });
        }
        self.status = to;
        Ok(())
    }

    /// Marks the task done.
    ///
    /// # Errors
    /// `InvalidTransition` unless open.
    pub fn complete(&mut self) -> Result<(), DomainError> {
        self.transition(TaskStatus::Done)
    }

    /// Cancels the task.
    ///
    /// # Errors
    /// `InvalidTransition` unless open.
    pub fn cancel(&mut self) -> Result<(), DomainError> {
        self.transition(TaskStatus::Cancelled)
    }

    /// Open and due before `today`.
    #[must_use]
    pub fn is_overdue(&self, today: NaiveDate) -> bool {
        self.status == TaskStatus::Open && self.due < today
    }
}

impl Record for FollowUpTask {
    const KIND: RecordKind = RecordKind::FollowUpTask;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        self.team.map_or(Scope::Person(self.person), Scope::Team)
    }

    fn subject(&self) -> Option<Id> {
        Some(self.person)
    }

    fn day(&self) -> Option<NaiveDate> {
        Some(self.due)
    }

    fn state(&self) -> Option<&'static str> {
        Some(self.status.code())
    }

    fn validate(&self, _ctx: &ValidationContext) -> Result<(), DomainError> {
        required_note("reason", &self.reason)
    }
}

impl fmt::Debug for FollowUpTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowUpTask")
            .field("id", &self.id)
            .field("person", &self.person)
            .field("episode", &self.episode)
            .field("assignee", &self.assignee)
            .field("due", &self.due)
            .field("reason", &Redacted)
            .field("created_by", &self.created_by)
            .field("status", &self.status)
            .field("team", &self.team)
            .finish()
    }
}

/// A supervisor's review of a volunteer's work.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionNote {
    /// Record id.
    pub id: Id,
    /// The team (scope).
    pub team: Id,
    /// The supervisor (user).
    pub supervisor: Id,
    /// The volunteer reviewed (user).
    pub volunteer: Id,
    /// Day of the review.
    pub on: NaiveDate,
    /// People whose cases were reviewed.
    #[serde(default)]
    pub caseload_reviewed: Vec<Id>,
    /// Concerns raised.
    #[serde(default)]
    pub concerns: String,
    /// Actions agreed, one per entry.
    #[serde(default)]
    pub agreed_actions: Vec<String>,
    /// Tasks created from the agreed actions.
    #[serde(default)]
    pub tasks_created: Vec<Id>,
}

impl SupervisionNote {
    /// An empty note (fill in concerns or agreed actions before saving).
    #[must_use]
    pub fn new(team: Id, supervisor: Id, volunteer: Id, on: NaiveDate) -> Self {
        Self {
            id: Id::new(),
            team,
            supervisor,
            volunteer,
            on,
            caseload_reviewed: Vec::new(),
            concerns: String::new(),
            agreed_actions: Vec::new(),
            tasks_created: Vec::new(),
        }
    }
}

impl Record for SupervisionNote {
    const KIND: RecordKind = RecordKind::SupervisionNote;

    fn id(&self) -> Id {
        self.id
    }

    fn scope(&self) -> Scope {
        Scope::Team(self.team)
    }

    fn subject(&self) -> Option<Id> {
        None
    }

    fn day(&self) -> Option<NaiveDate> {
        Some(self.on)
    }

    fn validate(&self, ctx: &ValidationContext) -> Result<(), DomainError> {
        date_not_in_future("on", self.on, ctx)?;
        if self.concerns.trim().is_empty() && self.agreed_actions.is_empty() {
            return Err(DomainError::Required {
                field: "concerns or agreed_actions",
            });
        }
        note("concerns", &self.concerns)?;
        if self.agreed_actions.len() > LIST_MAX {
            return Err(DomainError::TooMany {
                field: "agreed_actions",
                max: LIST_MAX,
            });
        }
        for action in &self.agreed_actions {
            required_note("agreed_actions", action)?;
        }
        distinct_list("caseload_reviewed", &self.caseload_reviewed)?;
        distinct_list("tasks_created", &self.tasks_created)
    }
}

impl fmt::Debug for SupervisionNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisionNote")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("supervisor", &self.supervisor)
            .field("volunteer", &self.volunteer)
            .field("on", &self.on)
            .field("caseload_reviewed", &self.caseload_reviewed.len())
            .field("concerns", &Redacted)
            .field("agreed_actions", &self.agreed_actions.len())
            .field("tasks_created", &self.tasks_created)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d, round_trip};

    #[test]
    fn task_can_be_completed_once() {
        let mut task = FollowUpTask::new(Id::new(), d(2026, 3, 12), "Thăm lại sau xét nghiệm");
        assert_eq!(task.validate(&ctx()), Ok(()));
        assert_eq!(task.state(), Some("open"));
        task.complete().unwrap();
        assert_eq!(task.state(), Some("done"));
        assert_eq!(
            task.complete(),
            Err(DomainError::InvalidTransition {
                from: "done",
                to: "done"
            })
        );
        assert_eq!(
            task.cancel(),
            Err(DomainError::InvalidTransition {
                from: "done",
                to: "cancelled"
            })
        );
        round_trip(&task);
    }

    #[test]
    fn cancelled_task_cannot_be_reopened_or_done() {
        let mut task = FollowUpTask::new(Id::new(), d(2026, 3, 12), "x");
        task.cancel().unwrap();
        assert!(task.transition(TaskStatus::Open).is_err());
        assert!(task.complete().is_err());
        assert_eq!(task.status, TaskStatus::Cancelled);
    }

    #[test]
    fn only_open_tasks_past_due_are_overdue() {
        let mut task = FollowUpTask::new(Id::new(), d(2026, 3, 12), "x");
        assert!(!task.is_overdue(d(2026, 3, 12)));
        assert!(task.is_overdue(d(2026, 3, 13)));
        task.complete().unwrap();
        assert!(!task.is_overdue(d(2026, 3, 13)));
    }

    #[test]
    fn task_reason_is_required_and_redacted() {
        let mut task = FollowUpTask::new(Id::new(), d(2026, 3, 12), " ");
        assert_eq!(
            task.validate(&ctx()),
            Err(DomainError::Required { field: "reason" })
        );
        task.reason = "Đưa đi xét nghiệm".into();
        assert!(!format!("{task:?}").contains("xét"));
    }

    #[test]
    fn team_task_lives_in_the_team_scope_about_the_same_person() {
        let mut task = FollowUpTask::new(Id::new(), d(2026, 3, 12), "x");
        assert_eq!(task.scope(), Scope::Person(task.person));
        let team = Id::new();
        task.team = Some(team);
        assert_eq!(task.scope(), Scope::Team(team));
        assert_eq!(task.subject(), Some(task.person));
        assert_eq!(task.day(), Some(d(2026, 3, 12)));
    }

    #[test]
    fn supervision_note_must_say_something() {
        let c = ctx();
        let mut n = SupervisionNote::new(Id::new(), Id::new(), Id::new(), d(2026, 3, 10));
        assert_eq!(
            n.validate(&c),
            Err(DomainError::Required {
                field: "concerns or agreed_actions"
            })
        );
        n.concerns = "Chưa thăm anh A hai tuần".into();
        assert_eq!(n.validate(&c), Ok(()));
        assert_eq!(n.scope(), Scope::Team(n.team));
        assert_eq!(n.subject(), None);
        round_trip(&n);
        assert!(!format!("{n:?}").contains("thăm"));
        n.agreed_actions = vec!["Thăm trong tuần".into(), " ".into()];
        assert_eq!(
            n.validate(&c),
            Err(DomainError::Required {
                field: "agreed_actions"
            })
        );
        n.agreed_actions = vec!["a".into(); LIST_MAX + 1];
        assert_eq!(
            n.validate(&c),
            Err(DomainError::TooMany {
                field: "agreed_actions",
                max: LIST_MAX
            })
        );
        n.agreed_actions.clear();
        let p = Id::new();
        n.caseload_reviewed = vec![p, p];
        assert_eq!(
            n.validate(&c),
            Err(DomainError::Duplicate {
                field: "caseload_reviewed"
            })
        );
        n.caseload_reviewed.clear();
        n.on = d(2026, 3, 11);
        assert_eq!(n.validate(&c), Err(DomainError::InFuture { field: "on" }));
    }
}

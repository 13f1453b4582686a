//! What the sink answers, decided without I/O: failure shares per stage (connect, RCPT, end
//! of data) rolled against a number in [0, 1), and recipient local-part triggers, which win
//! over the shares so a test can ask for an outcome by address.

use smtp_wire::Reply;

/// The part of connections, recipients or messages that get a 4xx or a 5xx at one stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shares {
    /// Fraction answered with a temporary failure (0.0 to 1.0).
    pub tempfail: f64,
    /// Fraction answered with a permanent failure (0.0 to 1.0).
    pub permfail: f64,
}

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    /// A share outside [0, 1], or two shares of one stage summing above 1.
    #[error(
        "{stage}: shares must be between 0 and 1 and sum to at most 1 (tempfail {tempfail}, permfail {permfail})"
    )]
    Shares {
        stage: &'static str,
        tempfail: f64,
        permfail: f64,
    },
}

/// The sink's answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub connect: Shares,
    pub rcpt: Shares,
    pub data: Shares,
}

/// The outcome of one decision, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Tempfail,
    Permfail,
}

impl Outcome {
    /// A stable label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Tempfail => "tempfail",
            Outcome::Permfail => "permfail",
        }
    }

    fn of(reply: &Reply) -> Outcome {
        match reply.code {
            200..=399 => Outcome::Accepted,
            400..=499 => Outcome::Tempfail,
            _ => Outcome::Permfail,
        }
    }
}

/// Local-part prefixes that force an outcome at RCPT, whatever the shares say.
pub const TEMPFAIL_TRIGGER: &str = "tempfail+";
pub const PERMFAIL_TRIGGER: &str = "permfail+";

impl Shares {
    fn check(&self, stage: &'static str) -> Result<(), PolicyError> {
        let ok = |v: f64| (0.0..=1.0).contains(&v);
        if ok(self.tempfail) && ok(self.permfail) && self.tempfail + self.permfail <= 1.0 + 1e-9 {
            Ok(())
        } else {
            Err(PolicyError::Shares {
                stage,
                tempfail: self.tempfail,
                permfail: self.permfail,
            })
        }
    }

    /// Tempfail for rolls below `tempfail`, permfail for the next `permfail`, else none.
    fn roll(&self, roll: f64) -> Option<Outcome> {
        if roll < self.tempfail {
            Some(Outcome::Tempfail)
        } else if roll < self.tempfail + self.permfail {
            Some(Outcome::Permfail)
        } else {
            None
        }
    }
}

impl Policy {
    /// Checks every share once, before the sink starts.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.connect.check("connect")?;
        self.rcpt.check("rcpt")?;
        self.data.check("data")
    }

    /// The reply that refuses a new connection instead of the greeting, if any.
    pub fn at_connect(&self, roll: f64) -> Option<Reply> {
        match self.connect.roll(roll)? {
            Outcome::Tempfail => Some(Reply::new(
                421,
                (4, 7, 0),
                "sink: try again later, closing connection",
            )),
            _ => Some(Reply::new(
                554,
                (5, 7, 1),
                "sink: connection refused by policy",
            )),
        }
    }

    /// The reply refusing a recipient, if any: a trigger in the local part first, else the
    /// RCPT shares.
    pub fn at_rcpt(&self, address: &str, roll: f64) -> Option<Reply> {
        let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
        let outcome = if starts_with_ignore_case(local, TEMPFAIL_TRIGGER) {
            Outcome::Tempfail
        } else if starts_with_ignore_case(local, PERMFAIL_TRIGGER) {
            Outcome::Permfail
        } else {
            self.rcpt.roll(roll)?
        };
        Some(match outcome {
            Outcome::Tempfail => Reply::new(
                451,
                (4, 2, 1),
                "sink: mailbox temporarily unavailable, try again later",
            ),
            _ => Reply::new(550, (5, 1, 1), "sink: no such user"),
        })
    }

    /// The end-of-data reply.
    pub fn at_data(&self, roll: f64) -> Reply {
        match self.data.roll(roll) {
            None => Reply::new(250, (2, 0, 0), "sink: message accepted"),
            Some(Outcome::Tempfail) => {
                Reply::new(451, (4, 3, 0), "sink: temporary failure, try again later")
            }
            Some(_) => Reply::new(554, (5, 7, 1), "sink: message rejected by policy"),
        }
    }
}

/// The counting class of a reply the policy gave.
pub fn outcome(reply: &Reply) -> Outcome {
    Outcome::of(reply)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(tempfail: f64, permfail: f64) -> Shares {
        Shares { tempfail, permfail }
    }

    #[test]
    fn shares_split_the_unit_interval() {
        let policy = Policy {
            data: shares(0.1, 0.2),
            ..Policy::default()
        };
        assert_eq!(policy.at_data(0.05).code, 451);
        assert_eq!(policy.at_data(0.1).code, 554);
        assert_eq!(policy.at_data(0.29).code, 554);
        assert_eq!(policy.at_data(0.301).code, 250);
        assert_eq!(policy.at_data(0.999).code, 250);
    }

    #[test]
    fn triggers_win_over_shares_and_ignore_case() {
        let policy = Policy {
            rcpt: shares(0.0, 0.0),
            ..Policy::default()
        };
        assert_eq!(
            policy.at_rcpt("tempfail+1@x.test", 0.9).map(|r| r.code),
            Some(451)
        );
        assert_eq!(
            policy.at_rcpt("PermFail+a@x.test", 0.9).map(|r| r.code),
            Some(550)
        );
        assert_eq!(policy.at_rcpt("user@x.test", 0.0), None);
        // A trigger is a prefix of the local part, not anywhere in the address.
        assert_eq!(policy.at_rcpt("user@tempfail+x.test", 0.5), None);
        let everyone_fails = Policy {
            rcpt: shares(0.0, 1.0),
            ..Policy::default()
        };
        assert_eq!(
            everyone_fails
                .at_rcpt("tempfail+z@x.test", 0.5)
                .map(|r| r.code),
            Some(451)
        );
    }

    #[test]
    fn connect_refusals_are_421_or_554() {
        let policy = Policy {
            connect: shares(0.5, 0.5),
            ..Policy::default()
        };
        assert_eq!(policy.at_connect(0.2).map(|r| r.code), Some(421));
        assert_eq!(policy.at_connect(0.7).map(|r| r.code), Some(554));
        assert_eq!(Policy::default().at_connect(0.0), None);
    }

    #[test]
    fn invalid_shares_are_refused_naming_the_stage() {
        let policy = Policy {
            rcpt: shares(0.7, 0.4),
            ..Policy::default()
        };
        assert!(matches!(
            policy.validate(),
            Err(PolicyError::Shares { stage: "rcpt", .. })
        ));
        let negative = Policy {
            data: shares(-0.1, 0.0),
            ..Policy::default()
        };
        assert!(negative.validate().is_err());
        assert!(
            Policy {
                connect: shares(0.5, 0.5),
                ..Policy::default()
            }
            .validate()
            .is_ok()
        );
    }
}

//! A simple on-call rotation: shifts of a fixed length from a start time; in each shift
//! the next person of the list is first line (L1), the one after second line (L2), and
//! the managers are L3 (the person after next when there are none).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: Option<String>,
    pub slack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub people: Vec<String>,
    pub managers: Vec<String>,
    pub start_ms: i64,
    pub shift: Duration,
}

impl Rotation {
    /// Who answers at `level` (1 … 3) at `now_ms`.
    pub fn at(&self, level: u8, now_ms: i64) -> &str {
        let shift = (self.shift.as_millis() as i64).max(1);
        let n = self.people.len() as i64;
        let turn = (now_ms - self.start_ms).div_euclid(shift);
        let nth = |k: i64| self.people[(turn + k).rem_euclid(n) as usize].as_str();
        match level {
            0 | 1 => nth(0),
            2 => nth(1),
            _ => {
                let m = self.managers.len() as i64;
                if m > 0 {
                    self.managers[turn.rem_euclid(m) as usize].as_str()
                } else {
                    nth(2)
                }
            }
        }
    }

    /// When the shift covering `now_ms` ends.
    pub fn shift_ends_ms(&self, now_ms: i64) -> i64 {
        let shift = (self.shift.as_millis() as i64).max(1);
        self.start_ms + ((now_ms - self.start_ms).div_euclid(shift) + 1) * shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_turn() {
        let day = 86_400_000;
        let r = Rotation {
            people: vec!["ann".into(), "bob".into(), "cho".into()],
            managers: vec!["dee".into()],
            start_ms: 0,
            shift: Duration::from_secs(7 * 86_400),
        };
        assert_eq!(
            (r.at(1, day), r.at(2, day), r.at(3, day)),
            ("ann", "bob", "dee")
        );
        assert_eq!((r.at(1, 8 * day), r.at(2, 8 * day)), ("bob", "cho"));
        assert_eq!((r.at(1, 15 * day), r.at(2, 15 * day)), ("cho", "ann"));
        assert_eq!(r.at(1, -day), "cho", "before the start, turns count back");
        assert_eq!(r.shift_ends_ms(day), 7 * day);
    }
}

//! Exit codes of `releasepassport`, in one place (also listed in `--help`
//! and `docs/cli.md`).

use crate::api::{Decision, Mode};

/// ALLOW or ALLOW_WITH_CANARY, any decision in shadow mode, a verified passport.
pub const OK: i32 = 0;
/// `verify`: the passport does not verify (bad signature, unknown key id, wrong algorithm, malformed signature).
pub const VERIFY_FAILED: i32 = 1;
/// Bad input: unreadable or malformed file, invalid policy, bad key, bad flag.
pub const BAD_INPUT: i32 = 2;
/// HOLD in enforce mode.
pub const HOLD: i32 = 3;
/// REQUIRE_APPROVAL in enforce mode.
pub const REQUIRE_APPROVAL: i32 = 4;
/// BLOCK in enforce mode.
pub const BLOCK: i32 = 5;
/// ROLLBACK_RECOMMENDED in enforce mode.
pub const ROLLBACK_RECOMMENDED: i32 = 6;
/// `gate`: no decision for the applied generation within `--timeout`
/// (`approve`/`waive --wait`: not judged within `--timeout`).
pub const TIMEOUT: i32 = 7;
/// `approve`/`waive --wait`: the approval or waiver does not count (self-approval,
/// a ServiceAccount, beyond the Policy's maximum duration, ...).
pub const NOT_COUNTED: i32 = 8;

/// The exit code of a decision: 0 in shadow mode or when the decision allows
/// promotion, else the decision's own code.
pub fn for_decision(decision: Decision, mode: Mode) -> i32 {
    if mode == Mode::Shadow {
        return OK;
    }
    enforce_code(decision)
}

/// The code a decision has in enforce mode.
pub fn enforce_code(decision: Decision) -> i32 {
    match decision {
        Decision::Allow | Decision::AllowWithCanary => OK,
        Decision::RequireApproval => REQUIRE_APPROVAL,
        Decision::Hold => HOLD,
        Decision::RollbackRecommended => ROLLBACK_RECOMMENDED,
        Decision::Block => BLOCK,
    }
}

/// The exit-code table for `--help` texts.
pub const HELP: &str = "Exit codes:
  0  ALLOW or ALLOW_WITH_CANARY, or any decision in shadow mode
  1  verify: the passport does not verify
  2  bad input (unreadable/malformed file, invalid policy, bad key)
  3  HOLD (enforce mode)
  4  REQUIRE_APPROVAL (enforce mode)
  5  BLOCK (enforce mode)
  6  ROLLBACK_RECOMMENDED (enforce mode)
  7  gate: no decision within --timeout
  8  approve/waive --wait: it does not count";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_mode_always_exits_zero() {
        for d in Decision::ALL {
            assert_eq!(for_decision(d, Mode::Shadow), OK);
        }
    }

    #[test]
    fn enforce_codes_are_distinct_for_non_allowing_decisions() {
        let codes: Vec<i32> = Decision::ALL
            .iter()
            .filter(|d| !d.allows_promotion())
            .map(|d| for_decision(*d, Mode::Enforce))
            .collect();
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        assert!(
            codes
                .iter()
                .all(|c| ![OK, VERIFY_FAILED, BAD_INPUT, TIMEOUT, NOT_COUNTED].contains(c))
        );
    }
}

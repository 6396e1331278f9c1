#!/usr/bin/env python3
"""Planted bugs for scripts/mutants.sh: classic mistakes of the Tendermint family.

Each mutant is a list of exact text replacements in files of a *copy* of the tree
(`apply NAME DIR`). Every `old` text must occur exactly once in its file, so a
mutant whose target code has changed is reported as not applied instead of
silently "surviving".

  python3 scripts/mutants.py list
  python3 scripts/mutants.py apply NAME DIR
  python3 scripts/mutants.py describe
"""
import sys
from pathlib import Path

CORE = "consensus/src/core.rs"
SAFETY = "consensus/src/safety.rs"
CERT = "consensus/src/certificate.rs"
TYPES = "consensus/src/types.rs"
MESSAGES = "consensus/src/messages.rs"

MUTANTS = {
    # (a) L29 with the lock ignored: a proposal with a proof of lock from round vr is
    # prevoted even when we are locked on another value at a round above vr.
    "a_lock_ignores_pol_round": (
        "L29: prevote a POL proposal even if locked on another value at a round > pol_round",
        [(SAFETY,
          "Some((locked_round, locked_value)) => locked_round <= pol_round || &locked_value == value,",
          "Some((_locked_round, _locked_value)) => { let _ = pol_round; let _ = value; true }")],
    ),
    # (b) a certificate in which one signer counts twice (only strictly increasing
    # order rejected duplicates).
    "b_cert_duplicate_signer": (
        "certificate check lets one signer count twice (signers non-decreasing instead of strictly increasing)",
        [(CERT,
          "if position > 0 && self.signatures[position - 1].0 >= *index {",
          "if position > 0 && self.signatures[position - 1].0 > *index {")],
    ),
    # (b') a certificate with fewer signers than a quorum.
    "b_cert_no_quorum": (
        "certificate check does not require a quorum of signers (one valid signature suffices)",
        [(CERT,
          "if self.signatures.len() < set.quorum() {",
          "if self.signatures.is_empty() {")],
    ),
    # (c) the lock check removed outright (L23 and L29).
    "c_lock_removed": (
        "L23/L29: the lock never stops a prevote",
        [(SAFETY,
          "Some((_, locked_value)) => &locked_value == value,",
          "Some(_) => { let _ = value; true }"),
         (SAFETY,
          "Some((locked_round, locked_value)) => locked_round <= pol_round || &locked_value == value,",
          "Some((_locked_round, _locked_value)) => { let _ = pol_round; let _ = value; true }")],
    ),
    # (d) quorum 2f instead of 2f + 1 (n − f) in the core's vote counting; certificates
    # are still checked at n − f.
    "d_core_quorum_2f": (
        "the core counts 2f (not n - f) votes as a quorum",
        [(CORE,
          "    fn quorum(&self) -> usize {\n        self.sets.current.quorum()\n    }",
          "    fn quorum(&self) -> usize {\n        (2 * self.sets.current.max_faulty()).max(1)\n    }")],
    ),
    # (d') the same everywhere: ValidatorSet::quorum (votes, certificates, the node).
    "d_set_quorum_2f": (
        "ValidatorSet::quorum is 2f (not n - f): votes and certificates",
        [(TYPES,
          "        self.len() - self.max_faulty()\n",
          "        (2 * self.max_faulty()).max(1)\n")],
    ),
    # (e) L36 on a polka of an older round: lock and precommit v at round r on 2f + 1
    # prevotes for v at any round <= r.
    "e_precommit_old_polka": (
        "L36: lock and precommit on a polka for v from any round <= the current one",
        [(CORE,
          "if self.log.verdicts.get(&value) != Some(&true) || self.log.count(VoteKind::Prevote, self.round, Some(&value)) < self.quorum() {",
          "if self.log.verdicts.get(&value) != Some(&true) || !(0..=self.round.0).any(|r| self.log.count(VoteKind::Prevote, Round(r), Some(&value)) >= self.quorum()) {")],
    ),
    # (f) validValue / validRound never updated (L42-L43 dropped): a proposer never
    # re-proposes a value that may be locked.
    "f_valid_not_updated": (
        "L42-L43: validValue/validRound never set",
        [(CORE,
          "        self.valid = Some((self.round, value));\n",
          "")],
    ),
    # (f') the proposer ignores its valid value and always proposes a fresh block.
    "f_no_repropose": (
        "L15-L16: the proposer never re-proposes validValue (always a fresh block)",
        [(CORE,
          "} else if let Some((valid_round, valid_value)) = self.valid {",
          "} else if let Some((valid_round, valid_value)) = self.valid.filter(|_| false) {")],
    ),
    # (g) a proposal from a validator that is not the round's proposer is accepted.
    "g_any_proposer": (
        "proposals from a validator that is not the proposer of (h, r) are accepted",
        [(MESSAGES,
          "if p.proposer != expected {",
          "if p.proposer != expected && p.proposer.0 >= set.len() as u32 {")],
    ),
    # (h) unlock on a nil polka (L44 also clears the lock).
    "h_unlock_on_nil_polka": (
        "L44: 2f + 1 nil prevotes also release the lock",
        [(CORE,
          "        if self.log.count(VoteKind::Prevote, self.round, None) < self.quorum() {\n            return false;\n        }\n        self.precommit_and_advance(None, out);",
          "        if self.log.count(VoteKind::Prevote, self.round, None) < self.quorum() {\n            return false;\n        }\n        self.locked = None;\n        self.precommit_and_advance(None, out);")],
    ),
    # (h') decide (and move to the next height) on one precommit short of a quorum.
    "h_decide_without_quorum": (
        "L49: decide on n - f - 1 precommits",
        [(CORE,
          ".find(|(value, n)| *n >= quorum && self.log.verdicts.get(value) == Some(&true))",
          ".find(|(value, n)| *n + 1 >= quorum && self.log.verdicts.get(value) == Some(&true))")],
    ),
}


def apply(name: str, root: Path) -> None:
    _, edits = MUTANTS[name]
    for rel, old, new in edits:
        path = root / rel
        text = path.read_text()
        count = text.count(old)
        if count != 1:
            sys.exit(f"mutant {name}: expected exactly one occurrence in {rel}, found {count}:\n{old}")
        path.write_text(text.replace(old, new))
        print(f"mutant {name}: patched {rel}")


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        print("\n".join(MUTANTS))
    elif len(sys.argv) == 4 and sys.argv[1] == "apply":
        apply(sys.argv[2], Path(sys.argv[3]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "describe":
        for name, (what, _) in MUTANTS.items():
            print(f"{name}: {what}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

//! A genesis file (`Genesis::from_json`: strict JSON, then validation). Every
//! verifier trusts exactly this file, so it must read the same in every tool:
//! printed again it parses to the same genesis with the same chain id.
use yrd_ledger::genesis::Genesis;

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let Ok(genesis) = Genesis::from_json(data) else { return };
    let id = genesis.chain_id().expect("a valid genesis has a chain id");
    let printed = genesis.to_json_pretty();
    let again = Genesis::from_json(printed.as_bytes()).unwrap_or_else(|e| panic!("the printed genesis does not parse: {e}"));
    assert_eq!(again, genesis, "printing and parsing changed the genesis");
    assert_eq!(again.chain_id().expect("chain id"), id, "printing changed the chain id");
    let _ = genesis.validator_set();
}

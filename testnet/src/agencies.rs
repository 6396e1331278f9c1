//! The agencies of a testnet of N validators: the four founding agencies first
//! (Shanghai, Jiangsu, Zhejiang, Anhui — the names every earlier testnet used),
//! then agencies named after cities of the four provinces, taken in turn
//! (JS, ZJ, AH, SH, …) so any N spreads over the delta. Each agency's node sits
//! in a city whose coordinates the WAN emulation turns into link delays
//! (`wan::delay_matrix`).

use anyhow::{bail, Result};

/// Fewest validators a testnet runs: four tolerate one fault (n = 3f + 1), the
/// smallest set where BFT is more than a formality.
pub const MIN_VALIDATORS: usize = 4;
/// Most validators a testnet runs: the city table below has sixteen entries, and
/// sixteen processes are already eight per core on the 2-core reference machine.
pub const MAX_VALIDATORS: usize = 16;

/// One agency of the testnet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgencySpec {
    /// Validator (and agency) name in the genesis and the directory name.
    pub name: &'static str,
    /// Its issuer's name in the genesis.
    pub issuer: &'static str,
    /// Region code (`SH`, `JS`, `ZJ`, `AH`).
    pub region: &'static str,
    /// The city its node stands in (for the WAN matrix and the printouts).
    pub city: &'static str,
    /// Latitude and longitude of that city, degrees (city centre, rounded to 0.01°).
    pub lat_deg: f64,
    pub lon_deg: f64,
}

const fn a(
    name: &'static str,
    issuer: &'static str,
    region: &'static str,
    city: &'static str,
    lat_deg: f64,
    lon_deg: f64,
) -> AgencySpec {
    AgencySpec { name, issuer, region, city, lat_deg, lon_deg }
}

/// Every agency a testnet can have, in the order they are added. The first four
/// are the founding agencies (their provincial capitals host the nodes).
pub const ALL: [AgencySpec; MAX_VALIDATORS] = [
    a("shanghai", "shanghai-credit", "SH", "Shanghai", 31.23, 121.47),
    a("jiangsu", "jiangsu-credit", "JS", "Nanjing", 32.06, 118.80),
    a("zhejiang", "zhejiang-credit", "ZJ", "Hangzhou", 30.27, 120.16),
    a("anhui", "anhui-credit", "AH", "Hefei", 31.82, 117.23),
    a("suzhou", "suzhou-credit", "JS", "Suzhou", 31.30, 120.59),
    a("ningbo", "ningbo-credit", "ZJ", "Ningbo", 29.87, 121.54),
    a("wuhu", "wuhu-credit", "AH", "Wuhu", 31.35, 118.43),
    a("songjiang", "songjiang-credit", "SH", "Songjiang (Shanghai)", 31.03, 121.23),
    a("wuxi", "wuxi-credit", "JS", "Wuxi", 31.49, 120.31),
    a("wenzhou", "wenzhou-credit", "ZJ", "Wenzhou", 28.00, 120.70),
    a("bengbu", "bengbu-credit", "AH", "Bengbu", 32.92, 117.39),
    a("xuzhou", "xuzhou-credit", "JS", "Xuzhou", 34.26, 117.18),
    a("jinhua", "jinhua-credit", "ZJ", "Jinhua", 29.08, 119.65),
    a("anqing", "anqing-credit", "AH", "Anqing", 30.54, 117.06),
    a("nantong", "nantong-credit", "JS", "Nantong", 31.98, 120.89),
    a("jiaxing", "jiaxing-credit", "ZJ", "Jiaxing", 30.75, 120.76),
];

/// The first `n` agencies, or why `n` is outside what a testnet runs.
pub fn first(n: usize) -> Result<&'static [AgencySpec]> {
    if !(MIN_VALIDATORS..=MAX_VALIDATORS).contains(&n) {
        bail!(
            "--validators {n} is outside {MIN_VALIDATORS}..={MAX_VALIDATORS}: a testnet needs at least \
             {MIN_VALIDATORS} validators to tolerate a fault and runs at most {MAX_VALIDATORS} (one per city in \
             its table; docs/testnet.md)"
        );
    }
    Ok(&ALL[..n])
}

/// Byzantine validators tolerated by `n`: f = ⌊(n − 1) / 3⌋.
pub fn faults_tolerated(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn founding_four_first_then_cities_across_the_four_provinces() {
        let names: Vec<&str> = ALL[..4].iter().map(|a| a.name).collect();
        assert_eq!(names, ["shanghai", "jiangsu", "zhejiang", "anhui"]);
        // Every name and issuer is distinct, every region one of the four.
        assert_eq!(ALL.iter().map(|a| a.name).collect::<HashSet<_>>().len(), MAX_VALIDATORS);
        assert_eq!(ALL.iter().map(|a| a.issuer).collect::<HashSet<_>>().len(), MAX_VALIDATORS);
        for a in &ALL {
            assert!(["SH", "JS", "ZJ", "AH"].contains(&a.region), "{a:?}");
            assert!(a.issuer.starts_with(a.name));
            // The Yangtze delta: 27–35 °N, 115–123 °E.
            assert!((27.0..35.0).contains(&a.lat_deg) && (115.0..123.0).contains(&a.lon_deg), "{a:?}");
        }
        // Any 8 consecutive additions cover all four provinces.
        let regions: HashSet<&str> = ALL[..8].iter().map(|a| a.region).collect();
        assert_eq!(regions.len(), 4);
    }

    #[test]
    fn range_is_four_to_sixteen_and_f_follows_n() {
        assert!(first(3).is_err());
        assert!(first(17).is_err());
        let e = first(0).unwrap_err().to_string();
        assert!(e.contains("4..=16"), "{e}");
        assert_eq!(first(4).unwrap().len(), 4);
        assert_eq!(first(16).unwrap().len(), 16);
        let fs: Vec<usize> = [4, 6, 7, 10, 13, 16].iter().map(|n| faults_tolerated(*n)).collect();
        assert_eq!(fs, [1, 1, 2, 3, 4, 5]);
    }
}

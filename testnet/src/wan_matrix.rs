//! The city-to-city delay matrix of `yrd-testnet --wan`: one-way delay between
//! two agencies' cities from the great-circle distance between them.
//!
//! ```text
//! one_way_ms = FIXED_MS + distance_km × ROUTE_FACTOR / FIBRE_KM_PER_MS
//! ```
//!
//! * Light in optical fibre travels at about c / 1.47 ≈ 204 km per ms
//!   ([`FIBRE_KM_PER_MS`] = 200).
//! * Fibre does not follow the great circle, and routers queue: measured Internet
//!   latency is about 3× the straight-line speed-of-light time, i.e. about 2× the
//!   straight-line time in fibre (Bozkurt et al., "Why Is the Internet so Slow?!",
//!   PAM 2017: median inflation of minimum RTT over c-latency ≈ 3.2): [`ROUTE_FACTOR`] = 2.
//! * A fixed [`FIXED_MS`] = 1 ms for the metro networks and switches at both ends
//!   (two nodes in the same city still see about a millisecond).
//!
//! So Shanghai–Hefei (≈ 400 km) is ≈ 5 ms one way (≈ 10 ms RTT), Shanghai–Hangzhou
//! (≈ 165 km) ≈ 2.6 ms, Wenzhou–Xuzhou (the two furthest cities, ≈ 700 km)
//! ≈ 8 ms: the delta is a few milliseconds wide, not hundreds. `yrd-testnet --wan`
//! prints the matrix it applies; docs/testnet.md lists it for the 16 cities.

use crate::agencies::AgencySpec;

/// Fibre propagation speed, km per millisecond (c / 1.47, rounded down).
pub const FIBRE_KM_PER_MS: f64 = 200.0;
/// Path length over great-circle distance (see the module docs for the source).
pub const ROUTE_FACTOR: f64 = 2.0;
/// Metro access and switching at both ends, ms.
pub const FIXED_MS: f64 = 1.0;
/// Mean Earth radius, km.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance between two points given in degrees, km (haversine).
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// One-way delay between two agencies' cities, ms (rounded to 0.1 ms).
pub fn one_way_ms(a: &AgencySpec, b: &AgencySpec) -> f64 {
    let d = distance_km(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg);
    ((FIXED_MS + d * ROUTE_FACTOR / FIBRE_KM_PER_MS) * 10.0).round() / 10.0
}

/// The matrix for these agencies: `m[i][j]` is the one-way delay from i to j, ms
/// (symmetric; 0 on the diagonal).
pub fn delay_matrix(agencies: &[AgencySpec]) -> Vec<Vec<f64>> {
    agencies
        .iter()
        .enumerate()
        .map(|(i, a)| agencies.iter().enumerate().map(|(j, b)| if i == j { 0.0 } else { one_way_ms(a, b) }).collect())
        .collect()
}

/// The matrix as text: a header of region codes and a row per agency.
pub fn format_matrix(agencies: &[AgencySpec], m: &[Vec<f64>]) -> String {
    let mut out = String::from("one-way delay, ms     ");
    for a in agencies {
        out.push_str(&format!("{:>6}", &a.name[..a.name.len().min(5)]));
    }
    out.push('\n');
    for (a, row) in agencies.iter().zip(m) {
        out.push_str(&format!("{:<10} {:<11}", a.name, a.city.split(' ').next().unwrap_or(a.city)));
        for d in row {
            out.push_str(&format!("{d:>6.1}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agencies::ALL;

    fn by_name(n: &str) -> &'static AgencySpec {
        ALL.iter().find(|a| a.name == n).unwrap()
    }

    #[test]
    fn distances_and_delays_are_those_of_the_delta() {
        let (sh, js, zj, ah) = (by_name("shanghai"), by_name("jiangsu"), by_name("zhejiang"), by_name("anhui"));
        // Great-circle distances (km), within 3 % of published figures.
        let d = |a: &AgencySpec, b: &AgencySpec| distance_km(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg);
        assert!((d(sh, ah) - 403.0).abs() < 12.0, "{}", d(sh, ah));
        assert!((d(sh, js) - 270.0).abs() < 9.0, "{}", d(sh, js));
        assert!((d(sh, zj) - 165.0).abs() < 6.0, "{}", d(sh, zj));
        // Shanghai to Hefei is a few milliseconds one way, not hundreds.
        let m = delay_matrix(&ALL);
        assert!((4.0..6.5).contains(&one_way_ms(sh, ah)), "{}", one_way_ms(sh, ah));
        for (i, row) in m.iter().enumerate() {
            assert_eq!(row[i], 0.0);
            for (j, x) in row.iter().enumerate() {
                assert_eq!(*x, m[j][i], "symmetric");
                if i != j {
                    assert!((FIXED_MS..10.0).contains(x), "{} → {}: {x}", ALL[i].name, ALL[j].name);
                }
            }
        }
        let text = format_matrix(&ALL[..4], &delay_matrix(&ALL[..4]));
        assert_eq!(text.lines().count(), 5, "{text}");
    }
}

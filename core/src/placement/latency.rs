//! Round-trip times between AWS regions, and from readers to regions. The built-in matrix is the
//! published table "Latency Between AWS Global Regions" (average RTT in ms, EC2 to EC2, April 2017),
//! as tabulated at <https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html>; an
//! operator can give its own ([`Matrix::new`]). Readers are placed at the region nearest to them
//! (their "area") plus a last-mile delay, unless their own browsers measured the round trip
//! ([`Matrix::with_readers`]).

use std::collections::BTreeMap;

/// The regions the built-in matrix covers, in its order.
pub const REGIONS: [&str; 10] = [
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];

/// RTT in ms, row = from, column = to, in [`REGIONS`] order (the table is nearly symmetric; its
/// São Paulo row is the transpose of its São Paulo column).
const RTT_MS: [[f64; 10]; 10] = [
    [0.0, 72.74, 86.98, 80.55, 88.66, 145.3, 178.4, 216.7, 230.0, 119.5],
    [71.63, 0.0, 19.46, 153.2, 166.6, 102.5, 131.5, 174.0, 157.5, 192.7],
    [88.68, 19.2, 0.0, 137.0, 159.5, 89.1, 118.3, 161.4, 162.2, 182.7],
    [80.52, 153.2, 137.0, 0.0, 19.56, 212.4, 242.4, 239.0, 309.6, 191.3],
    [88.62, 166.6, 159.5, 19.55, 0.0, 236.5, 266.2, 325.9, 323.5, 194.9],
    [145.3, 102.5, 89.16, 212.4, 236.6, 0.0, 31.44, 73.79, 103.9, 256.8],
    [176.6, 132.6, 118.2, 242.4, 265.3, 31.32, 0.0, 71.87, 134.0, 286.3],
    [216.7, 173.9, 161.4, 238.1, 325.9, 73.81, 71.29, 0.0, 175.3, 328.1],
    [229.7, 157.8, 161.9, 309.6, 323.2, 103.9, 134.0, 175.4, 0.0, 322.5],
    [119.5, 192.7, 182.7, 191.3, 194.9, 256.8, 286.3, 328.1, 322.5, 0.0],
];

/// What a reader adds to the round trip before reaching AWS's network (access network, DNS).
pub const LAST_MILE_MS: f64 = 15.0;

/// Region-to-region round-trip times.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rtt: BTreeMap<(String, String), f64>,
    /// Readers' measured round trips, `(area, region)` → ms, last mile included.
    readers: BTreeMap<(String, String), f64>,
}

impl Default for Matrix {
    fn default() -> Self {
        let mut rtt = BTreeMap::new();
        for (i, from) in REGIONS.iter().enumerate() {
            for (j, to) in REGIONS.iter().enumerate() {
                rtt.insert(((*from).to_owned(), (*to).to_owned()), RTT_MS[i][j]);
            }
        }
        Self { rtt, readers: BTreeMap::new() }
    }
}

impl Matrix {
    /// A matrix of one's own: `(from, to) → ms`; a missing pair falls back to its reverse.
    #[must_use]
    pub fn new(rtt: BTreeMap<(String, String), f64>) -> Self {
        Self { rtt, readers: BTreeMap::new() }
    }

    /// This matrix with readers' measured round trips (`(area, region)` → ms), which take the place
    /// of the region-to-region table plus the last mile where they exist.
    #[must_use]
    pub fn with_readers(mut self, readers: BTreeMap<(String, String), f64>) -> Self {
        self.readers = readers;
        self
    }

    /// The round trip between two regions, if the matrix knows them.
    #[must_use]
    pub fn rtt(&self, from: &str, to: &str) -> Option<f64> {
        if from == to {
            return Some(0.0);
        }
        let key = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        self.rtt.get(&key(from, to)).or_else(|| self.rtt.get(&key(to, from))).copied()
    }

    /// A reader in `area` (named by the region nearest it) reaching `region`.
    #[must_use]
    pub fn reader_ms(&self, area: &str, region: &str) -> Option<f64> {
        let measured = self.readers.get(&(area.to_owned(), region.to_owned())).copied();
        measured.or_else(|| self.rtt(area, region).map(|rtt| rtt + LAST_MILE_MS))
    }

    /// Whether every region named is in the matrix.
    #[must_use]
    pub fn knows(&self, region: &str) -> bool {
        self.rtt.keys().any(|(from, to)| from == region || to == region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_matrix_is_complete_and_nearly_symmetric() {
        let matrix = Matrix::default();
        for from in REGIONS {
            for to in REGIONS {
                let (there, back) = (matrix.rtt(from, to).unwrap_or(f64::NAN), matrix.rtt(to, from).unwrap_or(0.0));
                assert!((there - back).abs() < 3.0, "{from} ↔ {to}: {there} / {back}");
            }
        }
        assert_eq!(matrix.rtt("eu-west-1", "eu-central-1"), Some(19.56));
        assert_eq!(matrix.reader_ms("us-east-1", "us-east-1"), Some(LAST_MILE_MS));
        assert_eq!(matrix.rtt("us-east-1", "af-south-1"), None);
        assert!(matrix.knows("sa-east-1") && !matrix.knows("af-south-1"));
        let measured = matrix.with_readers(BTreeMap::from([(("us-east-1".to_owned(), "sa-east-1".to_owned()), 140.0)]));
        assert_eq!(measured.reader_ms("us-east-1", "sa-east-1"), Some(140.0));
        assert_eq!(measured.reader_ms("us-east-1", "eu-west-1"), Some(80.55 + LAST_MILE_MS));
    }
}

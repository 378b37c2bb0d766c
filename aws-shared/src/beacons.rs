//! Readers' beacons as CloudWatch metrics: the blog service writes them (counts and sums only,
//! never an address), the operator's placement reads them. Pure and free of the AWS SDK:
//! `blog-core` compiles this same file (`blog_core::placement::readers::names`), so the service,
//! the operator and the placement decision name reader areas with one piece of code.

/// A reader's round trip to one candidate region, ms, with [`NEAREST`] and [`CANDIDATE`].
pub const ROUND_TRIP: &str = "ReaderRoundTrip";
/// The reader's area: the candidate region nearest the reader (the lowest round trip the page
/// measured), with the band of that round trip when it is far ([`area_of`]).
pub const NEAREST: &str = "Nearest";
/// The candidate region measured.
pub const CANDIDATE: &str = "Candidate";
/// A reader's round trip to one variant's API, ms, with [`VARIANT`] (`functions`, `containers`).
pub const VARIANT_ROUND_TRIP: &str = "VariantRoundTrip";
pub const VARIANT: &str = "Variant";

/// Width of the distance bands readers are counted in under their nearest candidate, ms, up to
/// [`LAST_BAND_MS`]: readers far from every candidate (a place with no candidate of its own) are
/// kept apart from that candidate's own readers, so one mean does not hide them; the last band
/// bounds the metrics a blog pays for.
pub const BAND_MS: f64 = 50.0;
pub const LAST_BAND_MS: f64 = 200.0;

/// The area a reader counts in: `nearest` within [`BAND_MS`], else `nearest+<band>`:
/// `ap-northeast-1+100` from 100 to 150 ms, `ap-northeast-1+200` from 200 ms on.
#[must_use]
pub fn area_of(nearest: &str, nearest_ms: f64) -> String {
    let band = ((nearest_ms / BAND_MS).floor() * BAND_MS).clamp(0.0, LAST_BAND_MS);
    if band > 0.0 { format!("{nearest}+{band:.0}") } else { nearest.to_owned() }
}

/// Every area readers nearest `candidate` can count in: alone, then with each band.
pub fn areas_of(candidate: &str) -> impl Iterator<Item = String> + '_ {
    let bands = (0..).map(|i| f64::from(i) * BAND_MS).take_while(|band| *band <= LAST_BAND_MS);
    bands.map(move |band| area_of(candidate, band))
}

/// The candidate an area is named by: `ap-northeast-1` for `ap-northeast-1+100`.
#[must_use]
pub fn candidate_of(area: &str) -> &str {
    area.split_once('+').map_or(area, |(candidate, _)| candidate)
}

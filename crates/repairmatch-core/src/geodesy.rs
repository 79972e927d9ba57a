//! Distances and regions on the WGS84 ellipsoid.
//!
//! Distances are geodesic (Karney's algorithm via `geo`), exact to the
//! millimetre, so coverage boundaries decide the same way everywhere on Earth.
//! For the spatial index every region is bounded by a box in 3-D space around
//! points on the unit sphere: such boxes have no seam at the antimeridian and no
//! singularity at the poles, which a longitude/latitude box has.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

use geo::{Coord, Distance, Geodesic, Intersects, LineString, Point, Polygon, Validation};
use rstar::AABB;
use serde::{Deserialize, Serialize};

/// A point in WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    /// Degrees north, -90..=90.
    pub latitude: f64,
    /// Degrees east, -180..=180.
    pub longitude: f64,
}

impl LatLng {
    /// A point; callers validate with [`LatLng::is_valid`].
    pub const fn new(latitude: f64, longitude: f64) -> Self {
        Self { latitude, longitude }
    }

    /// Finite and within range.
    pub fn is_valid(self) -> bool {
        self.latitude.is_finite()
            && self.longitude.is_finite()
            && (-90.0..=90.0).contains(&self.latitude)
            && (-180.0..=180.0).contains(&self.longitude)
    }

    /// The point on the unit sphere with this latitude and longitude.
    pub fn unit_vector(self) -> [f64; 3] {
        let (lat, lon) = (self.latitude.to_radians(), self.longitude.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    }

    fn to_point(self) -> Point<f64> {
        Point::new(self.longitude, self.latitude)
    }
}

/// Geodesic distance on WGS84, km: Karney's algorithm, exact to the
/// nanometre. About 1.5 µs a call; [`distance_km`] is the fast path.
pub fn geodesic_distance_km(from: LatLng, to: LatLng) -> f64 {
    Geodesic.distance(from.to_point(), to.to_point()) / 1000.0
}

const WGS84_EQUATORIAL_RADIUS_KM: f64 = 6_378.137;
const WGS84_FLATTENING: f64 = 1.0 / 298.257_223_563;

/// Largest relative difference between [`distance_km`] and the geodesic, with
/// a wide margin over what the tests measure.
pub const DISTANCE_RELATIVE_ERROR: f64 = 1e-4;

/// Distance on WGS84, km, by Lambert's formula for long lines: within
/// [`DISTANCE_RELATIVE_ERROR`] of the geodesic (far inside the contract's 0.5%)
/// at a few dozen nanoseconds. Rules never decide on it alone near a limit:
/// see [`within_km`]. Near-antipodal pairs, where the formula degrades, take
/// the exact geodesic.
pub fn distance_km(from: LatLng, to: LatLng) -> f64 {
    ReducedPoint::new(from).distance_km(&ReducedPoint::new(to), from, to)
}

/// A point on the sphere of *reduced* latitudes, as a unit vector: what
/// Lambert's formula needs of a point, computed once per point (a catalog keeps
/// one per center) so a distance costs one square root and one arcsine instead
/// of a dozen trigonometric calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReducedPoint([f64; 3]);

impl ReducedPoint {
    /// The point's reduced latitude β = atan((1 − f)·tan φ), on the unit sphere.
    pub fn new(point: LatLng) -> Self {
        let beta = ((1.0 - WGS84_FLATTENING) * point.latitude.to_radians().tan()).atan();
        let lambda = point.longitude.to_radians();
        Self([beta.cos() * lambda.cos(), beta.cos() * lambda.sin(), beta.sin()])
    }

    /// [`distance_km`] between this point and `other`, given both points'
    /// coordinates too (the near-antipodal fallback needs them).
    pub fn distance_km(&self, other: &ReducedPoint, from: LatLng, to: LatLng) -> f64 {
        let (a, b) = (&self.0, &other.0);
        // sin²(σ/2) is a quarter of the squared chord: the haversine of the
        // central angle, well conditioned for short distances.
        let half_chord_squared = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)) / 4.0;
        let sin_half = half_chord_squared.sqrt().clamp(0.0, 1.0);
        let sigma = 2.0 * sin_half.asin();
        if sigma < 1e-15 {
            return 0.0;
        }
        if sigma > 2.5 {
            return geodesic_distance_km(from, to);
        }
        let cos_half_squared = 1.0 - half_chord_squared;
        let sin_sigma = 2.0 * sin_half * cos_half_squared.sqrt();
        // With P = (β₁+β₂)/2 and Q = (β₂−β₁)/2: sin P·cos Q = (sin β₁ + sin β₂)/2
        // and cos P·sin Q = (sin β₂ − sin β₁)/2, and sin β is the vector's z.
        let sin_p_cos_q_squared = ((a[2] + b[2]) / 2.0).powi(2);
        let cos_p_sin_q_squared = ((b[2] - a[2]) / 2.0).powi(2);
        let x = (sigma - sin_sigma) * sin_p_cos_q_squared / cos_half_squared;
        let y = (sigma + sin_sigma) * cos_p_sin_q_squared / half_chord_squared;
        WGS84_EQUATORIAL_RADIUS_KM * (sigma - WGS84_FLATTENING / 2.0 * (x + y))
    }
}

/// Whether the geodesic distance between the points is at most `limit_km`,
/// given their fast [`distance_km`]: decided by the fast value when it is
/// clearly inside or outside, by the exact geodesic within the error band.
pub fn within_km(from: LatLng, to: LatLng, fast_distance_km: f64, limit_km: f64) -> bool {
    let band_km = DISTANCE_RELATIVE_ERROR * limit_km.max(fast_distance_km) + 1e-9;
    if fast_distance_km + band_km < limit_km {
        true
    } else if fast_distance_km - band_km > limit_km {
        false
    } else {
        geodesic_distance_km(from, to) <= limit_km
    }
}

/// The smallest radius of curvature of the WGS84 ellipsoid (meridional, at the
/// equator: a·(1 − e²)). Every path on the ellipsoid is at least this many km
/// per radian of the angle its end points subtend on the unit sphere, so a
/// geodesic distance `d` never spans more than `d / MIN_RADIUS_OF_CURVATURE_KM`
/// radians: the bound that makes index boxes safe.
pub const MIN_RADIUS_OF_CURVATURE_KM: f64 = 6_335.439;

/// An axis-aligned box in 3-D around points on the unit sphere.
pub type Envelope = AABB<[f64; 3]>;

/// A box that holds every point within `radius_km` (geodesic) of `center`.
pub fn cap_envelope(center: LatLng, radius_km: f64) -> Envelope {
    // Slack absorbs floating-point rounding in the trigonometry.
    let angle = radius_km / MIN_RADIUS_OF_CURVATURE_KM * (1.0 + 1e-9) + 1e-12;
    if angle >= PI {
        return whole_sphere();
    }
    let axis = center.unit_vector();
    let mut low = [0.0; 3];
    let mut high = [0.0; 3];
    for i in 0..3 {
        // The cap's farthest reach along an axis is the axis's angular distance
        // from the cap's centre, less the cap's radius.
        let to_axis = axis[i].clamp(-1.0, 1.0).acos();
        high[i] = if to_axis <= angle { 1.0 } else { (to_axis - angle).cos() };
        let to_opposite = (-axis[i]).clamp(-1.0, 1.0).acos();
        low[i] = if to_opposite <= angle { -1.0 } else { -(to_opposite - angle).cos() };
    }
    padded(low, high)
}

/// A box that holds every point of a latitude/longitude rectangle, in radians
/// (`west` may be below -π or `east` above π after unwrapping).
fn rectangle_envelope(south: f64, north: f64, west: f64, east: f64) -> Envelope {
    if east - west >= TAU {
        return whole_sphere();
    }
    let cos_lat_max = if south <= 0.0 && 0.0 <= north { 1.0 } else { south.cos().max(north.cos()) };
    let cos_lat_min = south.cos().min(north.cos());
    let range_of = |endpoint: fn(f64) -> f64, peak: f64, trough: f64| {
        let high = if interval_contains_angle(west, east, peak) { 1.0 } else { endpoint(west).max(endpoint(east)) };
        let low = if interval_contains_angle(west, east, trough) { -1.0 } else { endpoint(west).min(endpoint(east)) };
        (low, high)
    };
    let (cos_lon_low, cos_lon_high) = range_of(f64::cos, 0.0, PI);
    let (sin_lon_low, sin_lon_high) = range_of(f64::sin, FRAC_PI_2, -FRAC_PI_2);
    // x = cos(lat)·cos(lon) with cos(lat) ≥ 0: the extremes sit at corner products.
    let products = |low: f64, high: f64| {
        let corners = [cos_lat_min * low, cos_lat_min * high, cos_lat_max * low, cos_lat_max * high];
        let min = corners.iter().copied().fold(f64::INFINITY, f64::min);
        let max = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    };
    let (x_low, x_high) = products(cos_lon_low, cos_lon_high);
    let (y_low, y_high) = products(sin_lon_low, sin_lon_high);
    padded([x_low, y_low, south.sin()], [x_high, y_high, north.sin()])
}

/// Whether `angle + 2kπ` lies in `[low, high]` for some integer k.
fn interval_contains_angle(low: f64, high: f64, angle: f64) -> bool {
    let turns = ((low - angle) / TAU).ceil();
    angle + turns * TAU <= high
}

fn padded(low: [f64; 3], high: [f64; 3]) -> Envelope {
    const SLACK: f64 = 1e-9;
    AABB::from_corners(low.map(|v| v - SLACK), high.map(|v| v + SLACK))
}

fn whole_sphere() -> Envelope {
    AABB::from_corners([-1.0 - 1e-9; 3], [1.0 + 1e-9; 3])
}

/// The smallest box that holds both, or `None` when they do not meet.
pub fn envelope_intersection(a: &Envelope, b: &Envelope) -> Option<Envelope> {
    let (a_low, a_high, b_low, b_high) = (a.lower(), a.upper(), b.lower(), b.upper());
    let low = [0, 1, 2].map(|i| a_low[i].max(b_low[i]));
    let high = [0, 1, 2].map(|i| a_high[i].min(b_high[i]));
    (0..3).all(|i| low[i] <= high[i]).then(|| AABB::from_corners(low, high))
}

/// Why a polygon cannot be a service area.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AreaError {
    /// Fewer than four points.
    #[error("a ring needs at least 4 points (a triangle and the closing point), got {0}")]
    TooFewPoints(usize),
    /// Last point differs from the first.
    #[error("the ring does not close: its last point must repeat its first")]
    NotClosed,
    /// A point out of range.
    #[error("point {0} is not a valid latitude/longitude")]
    InvalidPoint(usize),
    /// Longitudes wind all the way around.
    #[error("the ring encloses a pole; use a radius for polar coverage")]
    EnclosesPole,
    /// Edges cross, or holes stray outside.
    #[error("the polygon is not simple: {0}")]
    NotSimple(String),
}

/// A service-area polygon, prepared for containment tests.
///
/// Edges are straight in longitude/latitude, as in GeoJSON. Longitudes are
/// unwrapped so a ring that crosses the antimeridian stays one piece; a query
/// point is then tried at its longitude and at ±360°.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceArea {
    /// The outer ring, as given.
    pub exterior: Vec<LatLng>,
    /// Holes, as given.
    pub holes: Vec<Vec<LatLng>>,
    unwrapped: Polygon<f64>,
}

impl ServiceArea {
    /// Validates and prepares a polygon.
    pub fn new(exterior: Vec<LatLng>, holes: Vec<Vec<LatLng>>) -> Result<Self, AreaError> {
        let reference = exterior.first().map_or(0.0, |p| p.longitude);
        let exterior_ring = unwrap_ring(&exterior, reference)?;
        let hole_rings = holes.iter().map(|hole| unwrap_ring(hole, reference)).collect::<Result<Vec<_>, _>>()?;
        let unwrapped = Polygon::new(exterior_ring, hole_rings);
        if let Err(problem) = unwrapped.check_validation() {
            return Err(AreaError::NotSimple(problem.to_string()));
        }
        Ok(Self { exterior, holes, unwrapped })
    }

    /// Whether the point is inside or on the boundary (holes excluded).
    pub fn contains(&self, point: LatLng) -> bool {
        [0.0, 360.0, -360.0].into_iter().any(|shift| {
            let coord = Coord { x: point.longitude + shift, y: point.latitude };
            self.unwrapped.intersects(&coord)
        })
    }

    /// A box around the area on the unit sphere.
    pub fn envelope(&self) -> Envelope {
        let ring = self.unwrapped.exterior();
        let (mut south, mut north, mut west, mut east) = (90.0_f64, -90.0_f64, f64::INFINITY, f64::NEG_INFINITY);
        for coord in ring.coords() {
            south = south.min(coord.y);
            north = north.max(coord.y);
            west = west.min(coord.x);
            east = east.max(coord.x);
        }
        rectangle_envelope(south.to_radians(), north.to_radians(), west.to_radians(), east.to_radians())
    }
}

/// Unwraps a ring's longitudes so neighbours differ by at most 180°, starting
/// within 180° of `reference`, and checks it closes.
fn unwrap_ring(ring: &[LatLng], reference: f64) -> Result<LineString<f64>, AreaError> {
    if ring.len() < 4 {
        return Err(AreaError::TooFewPoints(ring.len()));
    }
    if let Some(index) = ring.iter().position(|p| !p.is_valid()) {
        return Err(AreaError::InvalidPoint(index));
    }
    if ring.first() != ring.last() {
        return Err(AreaError::NotClosed);
    }
    let mut longitude = reference + wrap_degrees(ring[0].longitude - reference);
    let mut coords = Vec::with_capacity(ring.len());
    coords.push(Coord { x: longitude, y: ring[0].latitude });
    for pair in ring.windows(2) {
        longitude += wrap_degrees(pair[1].longitude - pair[0].longitude);
        coords.push(Coord { x: longitude, y: pair[1].latitude });
    }
    if (longitude - coords[0].x).abs() > 1e-9 {
        return Err(AreaError::EnclosesPole);
    }
    // Summing the steps can leave the closing point a rounding error away from
    // the first, which geo would read as an open ring; close it exactly.
    let first = coords[0];
    *coords.last_mut().expect("at least 4 points") = first;
    Ok(LineString::new(coords))
}

/// An angle difference in degrees, brought into -180..180.
fn wrap_degrees(delta: f64) -> f64 {
    let wrapped = (delta + 180.0).rem_euclid(360.0) - 180.0;
    if wrapped == -180.0 && delta > 0.0 { 180.0 } else { wrapped }
}

#[cfg(test)]
mod tests {
    use rstar::Envelope as _;

    use super::*;

    fn inside(envelope: &Envelope, point: LatLng) -> bool {
        envelope.contains_point(&point.unit_vector())
    }

    #[test]
    fn geodesic_distance_matches_known_values() {
        // Shanghai to Beijing: 1,067 km on WGS84.
        let shanghai = LatLng::new(31.22222, 121.45806);
        let beijing = LatLng::new(39.9075, 116.39723);
        let d = geodesic_distance_km(shanghai, beijing);
        assert!((d - 1067.0).abs() < 5.0, "{d}");
        // One degree of longitude on the equator is 111.319 km on WGS84.
        let d = geodesic_distance_km(LatLng::new(0.0, 0.0), LatLng::new(0.0, 1.0));
        assert!((d - 111.319_49).abs() < 0.001, "{d}");
    }

    #[test]
    fn fast_distance_stays_within_its_error_bound_of_the_geodesic() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut worst: f64 = 0.0;
        for i in 0..20_000 {
            let from = LatLng::new(rng.f64() * 180.0 - 90.0, rng.f64() * 360.0 - 180.0);
            // Half the pairs within 500 km (coverage radii), half anywhere.
            let to = if i % 2 == 0 {
                destination(from, rng.f64() * 360.0, rng.f64().powi(3) * 500.0 + 1e-4)
            } else {
                LatLng::new(rng.f64() * 180.0 - 90.0, rng.f64() * 360.0 - 180.0)
            };
            let exact = geodesic_distance_km(from, to);
            let fast = distance_km(from, to);
            let relative = (fast - exact).abs() / exact.max(1e-9);
            worst = worst.max(relative);
            assert!(relative < DISTANCE_RELATIVE_ERROR / 10.0, "{from:?} {to:?}: {fast} vs {exact}");
        }
        assert!(worst > 0.0, "the comparison compared something");
        assert_eq!(distance_km(LatLng::new(1.0, 2.0), LatLng::new(1.0, 2.0)), 0.0);
    }

    #[test]
    fn within_decides_exactly_at_the_limit() {
        let from = LatLng::new(31.2, 121.4);
        let to = destination(from, 77.0, 42.0);
        let exact = geodesic_distance_km(from, to);
        let fast = distance_km(from, to);
        assert!(within_km(from, to, fast, exact));
        assert!(!within_km(from, to, fast, exact - 1e-9));
        assert!(within_km(from, to, fast, 43.0) && !within_km(from, to, fast, 41.0));
    }

    #[test]
    fn cap_envelope_holds_points_at_its_radius_in_every_direction() {
        let centers = [
            LatLng::new(0.0, 0.0),
            LatLng::new(-17.7, 179.9),  // Fiji, by the antimeridian
            LatLng::new(64.7, -177.5),  // Chukotka side
            LatLng::new(89.99, 10.0),   // next to the north pole
            LatLng::new(-89.5, -120.0), // next to the south pole
            LatLng::new(31.2, 121.5),
        ];
        for center in centers {
            for radius_km in [0.5, 30.0, 500.0] {
                let envelope = cap_envelope(center, radius_km);
                for step in 0..72 {
                    let bearing = f64::from(step) * 5.0;
                    let edge = destination(center, bearing, radius_km * 0.999_999);
                    assert!(inside(&envelope, edge), "{center:?} r={radius_km} bearing={bearing}");
                }
                let far = destination(center, 45.0, radius_km * 1.2 + 10.0);
                assert!(!inside(&envelope, far) || radius_km >= 500.0 || center.latitude.abs() > 89.0);
            }
        }
    }

    fn destination(from: LatLng, bearing_degrees: f64, distance_km: f64) -> LatLng {
        use geo::Destination;
        let point = Geodesic.destination(from.to_point(), bearing_degrees, distance_km * 1000.0);
        LatLng::new(point.y(), point.x())
    }

    fn square(south: f64, west: f64, side: f64) -> Vec<LatLng> {
        vec![
            LatLng::new(south, west),
            LatLng::new(south, west + side),
            LatLng::new(south + side, west + side),
            LatLng::new(south + side, west),
            LatLng::new(south, west),
        ]
    }

    #[test]
    fn polygon_across_the_antimeridian() {
        // 178°E to 178°W around Fiji, written with longitudes that jump.
        let ring = vec![
            LatLng::new(-19.0, 178.0),
            LatLng::new(-19.0, -178.0),
            LatLng::new(-16.0, -178.0),
            LatLng::new(-16.0, 178.0),
            LatLng::new(-19.0, 178.0),
        ];
        let area = ServiceArea::new(ring, vec![]).unwrap();
        assert!(area.contains(LatLng::new(-17.5, 179.9)));
        assert!(area.contains(LatLng::new(-17.5, -179.9)));
        assert!(area.contains(LatLng::new(-17.5, 180.0)));
        assert!(!area.contains(LatLng::new(-17.5, 177.0)));
        assert!(!area.contains(LatLng::new(-17.5, 0.0)));
        let envelope = area.envelope();
        assert!(inside(&envelope, LatLng::new(-17.5, -179.9)));
        assert!(inside(&envelope, LatLng::new(-17.5, 179.9)));
        assert!(!inside(&envelope, LatLng::new(-17.5, 170.0)));
    }

    #[test]
    fn polygon_boundary_counts_and_holes_do_not() {
        let hole = square(0.4, 0.4, 0.2);
        let area = ServiceArea::new(square(0.0, 0.0, 1.0), vec![hole]).unwrap();
        assert!(area.contains(LatLng::new(0.0, 0.5)), "edge is inside");
        assert!(area.contains(LatLng::new(0.2, 0.2)));
        assert!(!area.contains(LatLng::new(0.5, 0.5)), "hole is outside");
        assert!(!area.contains(LatLng::new(1.5, 0.5)));
    }

    #[test]
    fn bad_polygons_are_refused() {
        let mut open = square(0.0, 0.0, 1.0);
        open.pop();
        open.push(LatLng::new(0.5, 0.5));
        assert_eq!(ServiceArea::new(open, vec![]), Err(AreaError::NotClosed));
        assert_eq!(ServiceArea::new(square(0.0, 0.0, 1.0)[..3].to_vec(), vec![]), Err(AreaError::TooFewPoints(3)));
        let bow_tie = vec![
            LatLng::new(0.0, 0.0),
            LatLng::new(1.0, 1.0),
            LatLng::new(0.0, 1.0),
            LatLng::new(1.0, 0.0),
            LatLng::new(0.0, 0.0),
        ];
        assert!(matches!(ServiceArea::new(bow_tie, vec![]), Err(AreaError::NotSimple(_))));
        let around_pole: Vec<LatLng> =
            [0.0, 90.0, 180.0, -90.0, 0.0].iter().map(|lon| LatLng::new(80.0, *lon)).collect();
        assert_eq!(ServiceArea::new(around_pole, vec![]), Err(AreaError::EnclosesPole));
    }

    #[test]
    fn rectangle_envelope_spans_the_seam() {
        let envelope = rectangle_envelope(0.1, 0.2, 3.0, 3.3);
        for lon in [3.0_f64, 3.1, PI, 3.3] {
            let p = LatLng::new(0.15_f64.to_degrees(), lon.to_degrees() - if lon > PI { 360.0 } else { 0.0 });
            assert!(inside(&envelope, p), "{lon}");
        }
    }
}

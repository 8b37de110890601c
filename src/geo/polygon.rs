//! Point in polygon on longitude/latitude pairs, by the even-odd rule (ray
//! casting). Fine for the coarse, small polygons of this module: edges are
//! straight in degrees, not great circles.

/// A point as `[longitude, latitude]` in degrees (GeoJSON's order).
pub type LonLat = [f64; 2];

/// Whether `point` lies inside the closed `ring` (first point repeated at
/// the end or not). Points exactly on an edge may fall either way.
pub fn contains(ring: &[LonLat], point: LonLat) -> bool {
    let [x, y] = point;
    let mut inside = false;
    let mut previous = match ring.last() {
        Some(&last) => last,
        None => return false,
    };
    for &[x1, y1] in ring {
        let [x2, y2] = previous;
        if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
        previous = [x1, y1];
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_outside_and_concave() {
        // An L shape: the notch at the top right is outside.
        let l = [
            [0.0, 0.0],
            [2.0, 0.0],
            [2.0, 1.0],
            [1.0, 1.0],
            [1.0, 2.0],
            [0.0, 2.0],
            [0.0, 0.0],
        ];
        assert!(contains(&l, [0.5, 0.5]));
        assert!(contains(&l, [1.5, 0.5]));
        assert!(contains(&l, [0.5, 1.5]));
        assert!(!contains(&l, [1.5, 1.5]));
        assert!(!contains(&l, [-0.1, 0.5]));
        assert!(!contains(&l, [0.5, 2.1]));
        assert!(!contains(&[], [0.0, 0.0]));
    }
}

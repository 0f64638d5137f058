package residue

// CACADistance is AF2's distance between consecutive CA atoms of a trans
// peptide bond (ω = 180°), in ångström (ca_ca).
const CACADistance = 3.80209737096

// Between-residue peptide-bond geometry from AF2's residue_constants, used by
// its structural-violation losses: mean and standard deviation of the C–N
// bond length (Å) for a following residue that is not / is proline, and the
// cosines of the C–N–CA and CA–C–N angles (mean, standard deviation).
const (
	BetweenResBondLengthCN          = 1.329
	BetweenResBondLengthCNPro       = 1.341
	BetweenResBondLengthStddevCN    = 0.014
	BetweenResBondLengthStddevCNPro = 0.016
	BetweenResCosAngleCNCA          = -0.5203 // 121.352° ± 2.315°
	BetweenResCosAngleCNCAStddev    = 0.0353
	BetweenResCosAngleCACN          = -0.4473 // 116.568° ± 1.995°
	BetweenResCosAngleCACNStddev    = 0.0311
)

// VanDerWaalsRadius returns AF2's van der Waals radius in ångström of a
// protein element symbol (C 1.7, N 1.55, O 1.52, S 1.8; van_der_waals_radius)
// and whether the element is one of those.
func VanDerWaalsRadius(element string) (float64, bool) {
	switch element {
	case "C":
		return 1.7, true
	case "N":
		return 1.55, true
	case "O":
		return 1.52, true
	case "S":
		return 1.8, true
	}
	return 0, false
}

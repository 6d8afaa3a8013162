/**
 * Special functions behind the drift tests' p-values: log-gamma, the regularized incomplete
 * gamma and beta functions, erf/erfc, and the normal, chi-square and Student t tails built on
 * them. Tails are computed directly (never as 1 − cdf), so a p-value of 1e-200 keeps its digits.
 *
 * @example
 *   chi2Sf(3.84, 1);      // ≈ 0.0500 (scipy.stats.chi2.sf)
 *   normalSf(8);          // ≈ 6.22e-16 (scipy.stats.norm.sf)
 *   studentTSf(2.1, 30);  // scipy.stats.t.sf
 */

const EPS = 2.220446049250313e-16;
const TINY = 1e-300;
const LN_SQRT_2PI = 0.9189385332046728;

// Lanczos approximation, g = 607/128, 15 terms (Godfrey's coefficients): ~1e-15 relative.
const LANCZOS_G = 607 / 128;
const LANCZOS = [
  0.9999999999999971, 57.15623566586292, -59.59796035547549, 14.136097974741746, -0.4919138160976202,
  0.00003399464998481189, 0.00004652362892704858, -0.00009837447530487956, 0.0001580887032249125,
  -0.00021026444172410488, 0.00021743961811521265, -0.0001643181065367639, 0.00008441822398385275,
  -0.000026190838401581408, 0.0000036899182659531625,
];

/** ln Γ(x) for x > 0 (NaN otherwise; +∞ at 0). */
export function logGamma(x: number): number {
  if (Number.isNaN(x) || x < 0) return Number.NaN;
  if (x === 0) return Number.POSITIVE_INFINITY;
  if (x === 1 || x === 2) return 0;
  if (x < 0.5) {
    // Reflection keeps the approximation in its accurate range: Γ(x)Γ(1−x) = π / sin(πx).
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  if (x > 1e7) {
    // Stirling with two correction terms: exact to double precision this far out.
    const inv = 1 / x;
    return (x - 0.5) * Math.log(x) - x + LN_SQRT_2PI + inv * (1 / 12 - (inv * inv) / 360);
  }
  const z = x - 1;
  let sum = LANCZOS[0];
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i] / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return LN_SQRT_2PI + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Stirling's correction ln Γ(z) − [(z − ½) ln z − z + ln √(2π)], for z ≥ 10. */
function stirlingCorrection(z: number): number {
  const inv = 1 / z;
  const inv2 = inv * inv;
  return inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)));
}

/** ln B(a, b). With one large argument, ln Γ(big) − ln Γ(big + small) is taken without cancellation. */
export function logBeta(a: number, b: number): number {
  const big = Math.max(a, b);
  const small = Math.min(a, b);
  if (big < 100) return logGamma(a) + logGamma(b) - logGamma(a + b);
  const ratio =
    -small * Math.log(big) -
    (big + small - 0.5) * Math.log1p(small / big) +
    small +
    stirlingCorrection(big) -
    stirlingCorrection(big + small);
  return logGamma(small) + ratio;
}

/** x^a e^−x / Γ(a), the common factor of both incomplete-gamma expansions, in logs. */
function gammaPrefixLog(a: number, x: number): number {
  return a * Math.log(x) - x - logGamma(a);
}

/** Series for P(a, x), good for x < a + 1. */
function gammaPSeries(a: number, x: number): number {
  let ap = a;
  let term = 1 / a;
  let sum = term;
  for (let n = 0; n < 100000; n++) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(gammaPrefixLog(a, x));
}

/** Continued fraction (modified Lentz) for Q(a, x), good for x ≥ a + 1. */
function gammaQFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 100000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(gammaPrefixLog(a, x)) * h;
}

/** Regularized lower incomplete gamma P(a, x) = γ(a, x) / Γ(a) (scipy.special.gammainc). */
export function gammaP(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return Number.NaN;
  if (x === 0) return 0;
  if (x === Number.POSITIVE_INFINITY) return 1;
  return x < a + 1 ? gammaPSeries(a, x) : 1 - gammaQFraction(a, x);
}

/** Regularized upper incomplete gamma Q(a, x) = 1 − P(a, x) (scipy.special.gammaincc). */
export function gammaQ(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return Number.NaN;
  if (x === 0) return 1;
  if (x === Number.POSITIVE_INFINITY) return 0;
  return x < a + 1 ? 1 - gammaPSeries(a, x) : gammaQFraction(a, x);
}

/** erf(x) = P(1/2, x²) with the sign of x. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const p = gammaP(0.5, x * x);
  return x < 0 ? -p : p;
}

/** erfc(x) = 1 − erf(x), accurate relative to its own size for large x. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 1 + gammaP(0.5, x * x);
  return gammaQ(0.5, x * x);
}

/** Standard normal upper tail P(Z > z) (scipy.stats.norm.sf). */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** Standard normal cdf P(Z ≤ z) (scipy.stats.norm.cdf). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Chi-square upper tail P(X > x) with k degrees of freedom (scipy.stats.chi2.sf). */
export function chi2Sf(x: number, k: number): number {
  if (Number.isNaN(x) || Number.isNaN(k) || k <= 0) return Number.NaN;
  if (x <= 0) return 1;
  return gammaQ(k / 2, x / 2);
}

/** Continued fraction for I_x(a, b) (modified Lentz); y = 1 − x is passed to keep its digits. */
function betaFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < 100000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return h;
}

/**
 * Regularized incomplete beta I_x(a, b) (scipy.special.betainc). `y`, if given, is 1 − x
 * computed without cancellation by the caller (e.g. t²/(ν + t²) next to ν/(ν + t²)).
 */
export function incompleteBeta(a: number, b: number, x: number, y = 1 - x): number {
  if (Number.isNaN(a) || Number.isNaN(b) || Number.isNaN(x) || a <= 0 || b <= 0 || x < 0 || x > 1) {
    return Number.NaN;
  }
  if (x === 0) return 0;
  if (y === 0) return 1;
  const logX = x > 0.5 ? Math.log1p(-y) : Math.log(x);
  const logY = y > 0.5 ? Math.log1p(-x) : Math.log(y);
  const front = Math.exp(a * logX + b * logY - logBeta(a, b));
  // The fraction converges fast for x < (a + 1)/(a + b + 2); otherwise use I_x(a,b) = 1 − I_y(b,a).
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(a, b, x)) / a;
  return 1 - (front * betaFraction(b, a, y)) / b;
}

/** Complement 1 − I_x(a, b), computed as a tail (not by subtraction) where that is the small side. */
export function incompleteBetaComplement(a: number, b: number, x: number, y = 1 - x): number {
  return incompleteBeta(b, a, y, x);
}

/** Student t upper tail P(T > t) with ν degrees of freedom (scipy.stats.t.sf). */
export function studentTSf(t: number, df: number): number {
  if (Number.isNaN(t) || Number.isNaN(df) || df <= 0) return Number.NaN;
  if (t === Number.POSITIVE_INFINITY) return 0;
  if (t === Number.NEGATIVE_INFINITY) return 1;
  const t2 = t * t;
  const x = df / (df + t2);
  const y = t2 / (df + t2);
  // P(|T| > |t|) = I_x(ν/2, 1/2).
  const twoSided = incompleteBeta(df / 2, 0.5, x, y);
  return t >= 0 ? twoSided / 2 : 1 - twoSided / 2;
}

/** Student t cdf P(T ≤ t) (scipy.stats.t.cdf). */
export function studentTCdf(t: number, df: number): number {
  return studentTSf(-t, df);
}

/**
 * Modified Bessel function of the second kind K_ν(x), x > 0 (scipy.special.kv), from
 * K_ν(x) = ∫₀^∞ e^(−x cosh u) cosh(νu) du. The integrand is analytic in a strip of half-width
 * π/2, so the trapezoid rule converges geometrically (a step of min(0.1, 0.6/√x) is exact to double
 * precision).
 */
export function besselK(nu: number, x: number): number {
  if (Number.isNaN(nu) || Number.isNaN(x) || x < 0) return Number.NaN;
  if (x === 0) return Number.POSITIVE_INFINITY;
  // The integrand narrows as x grows (width ~ 1/√x): the step follows it.
  const h = Math.min(0.1, 0.6 / Math.sqrt(x));
  let sum = 0.5 * Math.exp(-x);
  for (let k = 1; k < 100000; k++) {
    const u = k * h;
    const term = Math.exp(-x * Math.cosh(u)) * Math.cosh(nu * u);
    sum += term;
    if (term <= sum * 1e-18) break;
  }
  return h * sum;
}

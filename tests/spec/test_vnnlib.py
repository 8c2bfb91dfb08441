from fractions import Fraction

import numpy as np
import pytest

from simcert.errors import InputError
from simcert.spec import LinearConstraint, parse_vnnlib, read_vnnlib


def _decl(n_in: int, n_out: int) -> str:
    return "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in)) + "".join(
        f"(declare-const Y_{j} Real)\n" for j in range(n_out)
    )


def _bounds(n: int, lo: float = 0.0, hi: float = 1.0) -> str:
    return "".join(f"(assert (>= X_{i} {lo}))\n(assert (<= X_{i} {hi}))\n" for i in range(n))


# ------------------------------------------------------------------------------------------ shared files
@pytest.fixture(scope="module")
def shared_specs(bench):
    """Every .vnnlib file under the shared benchmarks, parsed once."""
    return {path: read_vnnlib(path) for path in sorted(bench.rglob("*.vnnlib"))}


def test_every_shared_vnnlib_file_parses(shared_specs):
    assert len(shared_specs) >= 44  # 10 acasxu + 30 mnistfc + 4 verydiff
    for path, spec in shared_specs.items():
        assert spec.version == "1.0"
        assert len(spec.boxes) >= 1
        for box in spec.boxes:
            assert box.dim == spec.n_inputs
        if "acasxu" in path.parts:
            assert (spec.n_inputs, spec.n_outputs) == (5, 5)
            assert spec.has_output_property and spec.output_constraints
        elif "mnistfc" in path.parts:
            assert (spec.n_inputs, spec.n_outputs) == (784, 10)
            assert len(spec.output_constraints) == 9
        elif path.name.startswith("mnist_"):
            assert spec.n_inputs == 784 and not spec.has_output_property
        elif path.name.startswith("sigma"):
            assert spec.n_inputs == 16
            np.testing.assert_allclose(spec.box.lower, -0.1)
            np.testing.assert_allclose(spec.box.upper, 0.1)


def test_mnist_boxes_lie_in_the_unit_cube(shared_specs):
    files = [p for p in shared_specs if "mnistfc" in p.parts or p.name.startswith("mnist_")]
    assert len(files) == 32
    for path in files:
        box = shared_specs[path].box
        assert box.lower.min() >= 0.0 and box.upper.max() <= 1.0
        if "mnistfc" in path.parts:
            eps = float(path.stem.rsplit("_", 1)[1])  # prop_K_EPS: an eps-ball (float32 decimals), clipped
            assert box.width.max() == pytest.approx(2 * eps, rel=1e-6)
            assert box.width.min() >= eps * (1 - 1e-6)
        else:  # VeryDiff local_15: 15 pixels free in [0, 1], the rest fixed (up to outward rounding)
            assert np.sum(box.width == 1.0) == 15
            assert np.all((box.width == 1.0) | (box.width < 1e-15))


def test_verydiff_fixed_pixels_are_the_test_image(bench):
    rows = np.loadtxt(bench / "reludiff-icse2020/test_inputs/mnist_test.csv", delimiter=",", max_rows=8)
    for k in (0, 7):
        box = read_vnnlib(bench / f"verydiff-release/specs/mnist_{k}_local_15.vnnlib").box
        fixed = box.width < 1e-15
        np.testing.assert_allclose(box.lower[fixed], rows[k, 1:][fixed] / 255, atol=1e-8)


def test_mnistfc_output_constraints_follow_the_label(bench):
    spec = read_vnnlib(bench / "vnncomp2021/mnistfc/prop_0_0.03.vnnlib")  # "label: 8"
    js = []
    for disjunct in spec.output_constraints:
        (c,) = disjunct
        assert c.op == "<=" and c.rhs == 0.0
        assert c.coeffs[8] == 1.0 and c.coeffs.sum() == 0.0 and np.abs(c.coeffs).sum() == 2.0
        js.append(int(np.flatnonzero(c.coeffs == -1.0)[0]))
    assert js == [0, 1, 2, 3, 4, 5, 6, 7, 9]


def test_acas_prop1_box_and_output(bench):
    spec = read_vnnlib(bench / "vnncomp2021/acasxu/prop_1.vnnlib")
    box = spec.box
    exact_lo = ["0.6", "-0.5", "-0.5", "0.45", "-0.5"]
    exact_hi = ["0.679857769", "0.5", "0.5", "0.5", "-0.45"]
    for i in range(5):
        assert Fraction(box.lower[i]) <= Fraction(exact_lo[i])  # outward: the box contains the region
        assert Fraction(box.upper[i]) >= Fraction(exact_hi[i])
    np.testing.assert_allclose(box.lower, [float(v) for v in exact_lo], rtol=0, atol=1e-15)
    np.testing.assert_allclose(box.upper, [float(v) for v in exact_hi], rtol=0, atol=1e-15)
    ((c,),) = spec.output_constraints  # unsafe if Y_0 >= 3.99...
    np.testing.assert_array_equal(c.coeffs, [-1, 0, 0, 0, 0])
    assert c.rhs == -3.991125645861615 and c.op == "<="
    assert c.holds(np.array([4.0, 0, 0, 0, 0])) and not c.holds(np.array([3.0, 0, 0, 0, 0]))


def test_acas_prop2_is_one_conjunction_and_prop6_two_boxes(bench):
    (conj,) = read_vnnlib(bench / "vnncomp2021/acasxu/prop_2.vnnlib").output_constraints
    assert [c.describe() for c in conj] == [f"-Y_0 + Y_{j} <= 0" for j in range(1, 5)]
    spec = read_vnnlib(bench / "vnncomp2021/acasxu/prop_6.vnnlib")
    assert len(spec.boxes) == 2
    assert spec.boxes[0].lower[1] == pytest.approx(0.11140846) and spec.boxes[1].upper[1] == pytest.approx(-0.11140846)
    with pytest.raises(InputError, match="union of 2 boxes"):
        spec.box
    assert len(spec.output_constraints) == 4


def test_n_inputs_mismatch(bench):
    with pytest.raises(InputError, match="declares 5 inputs, the model expects 784"):
        read_vnnlib(bench / "vnncomp2021/acasxu/prop_1.vnnlib", n_inputs=784)


# ------------------------------------------------------------------------------------------ VNN-LIB 1.0 syntax
def test_terms_comments_and_bound_forms():
    text = (
        "; header comment\n"
        "(declare-const X_0 Real) (declare-fun X_1 () Real)\n"
        "(declare-const X_2 Real) (declare-const X_3 Real)\n"
        "(declare-const Y_0 Real) (declare-const Y_1 Real)\n"
        "(assert (<= 0.0 X_0)) (assert (< X_0 1)) ; constant on the left, strict is closed\n"
        "(assert (<= -1 (* 2 X_1) 4))            ; chain: -1 <= 2 X_1 <= 4\n"
        "(assert (== X_2 0.25))                    ; fixes both bounds\n"
        "(assert (and (>= (- X_3) -3) (>= (+ X_3 1 (- 2)) 0.5) (<= (/ X_3 2) 5)))\n"
        "(assert (and (<= Y_0 Y_1) (>= (- Y_0 (* 0.5 Y_1)) 0.25)))\n"
        "(check-sat)\n"
    )
    spec = parse_vnnlib(text, "t.vnnlib")
    np.testing.assert_array_equal(spec.box.lower, [0.0, -0.5, 0.25, 1.5])
    np.testing.assert_array_equal(spec.box.upper, [1.0, 2.0, 0.25, 3.0])
    ((a, b),) = spec.output_constraints
    np.testing.assert_array_equal(a.coeffs, [1, -1])
    assert (a.rhs, a.op) == (0.0, "<=")
    np.testing.assert_array_equal(b.coeffs, [-1, 0.5])
    assert (b.rhs, b.op) == (-0.25, "<=")


def test_decimal_bounds_are_rounded_outward():
    spec = parse_vnnlib(_decl(1, 1) + "(assert (>= X_0 0.1)) (assert (<= X_0 0.3))")
    assert Fraction(spec.box.lower[0]) <= Fraction("0.1")
    assert Fraction(spec.box.upper[0]) >= Fraction("0.3")
    # exact binary fractions stay exact; division is exact before rounding
    spec = parse_vnnlib(_decl(1, 1) + "(assert (>= (* 3 X_0) 1)) (assert (<= X_0 0.5))")
    assert Fraction(spec.box.lower[0]) <= Fraction(1, 3) < Fraction(np.nextafter(spec.box.lower[0], 1))
    assert spec.box.upper[0] == 0.5


def test_output_strict_equality_and_distinct():
    spec = parse_vnnlib(_decl(1, 2) + _bounds(1) + "(assert (< Y_0 1)) (assert (= Y_1 2))")
    ((a, b, c),) = spec.output_constraints
    assert (a.op, a.rhs) == ("<", 1.0)
    assert (b.op, b.rhs, c.op, c.rhs) == ("<=", 2.0, "<=", -2.0)
    np.testing.assert_array_equal(b.coeffs, -c.coeffs)
    spec = parse_vnnlib(_decl(1, 2) + _bounds(1) + "(assert (distinct Y_0 Y_1))")
    assert [[c.describe() for c in d] for d in spec.output_constraints] == [["Y_0 - Y_1 < 0"], ["-Y_0 + Y_1 < 0"]]


def test_input_disjunctions_give_several_boxes():
    text = _decl(2, 1) + (
        "(assert (or (and (>= X_0 0) (<= X_0 1)) (and (>= X_0 2) (<= X_0 3))))\n"
        "(assert (or (and (>= X_1 0) (<= X_1 1)) (and (>= X_1 5) (<= X_1 6))))\n"
    )
    spec = parse_vnnlib(text)
    assert len(spec.boxes) == 4
    assert sorted((b.lower[0], b.lower[1]) for b in spec.boxes) == [(0, 0), (0, 5), (2, 0), (2, 5)]
    assert not spec.has_output_property and spec.output_constraints == []
    # an empty disjunct is dropped, the rest survives
    spec = parse_vnnlib(_decl(1, 1) + "(assert (or (and (>= X_0 2) (<= X_0 1)) (and (>= X_0 0) (<= X_0 1))))")
    assert len(spec.boxes) == 1 and spec.box.upper[0] == 1.0


def test_unsatisfiable_output_property_is_kept_apart_from_no_property():
    spec = parse_vnnlib(_decl(1, 1) + _bounds(1) + "(assert (and (<= Y_0 1) (<= 2 1)))")
    assert spec.has_output_property and spec.output_constraints == []  # the unsafe set is empty
    spec = parse_vnnlib(_decl(1, 1) + _bounds(1) + "(assert (or (<= Y_0 1) (<= 2 1)))")
    assert [[c.describe() for c in d] for d in spec.output_constraints] == [["Y_0 <= 1"]]
    spec = parse_vnnlib(_decl(1, 1) + _bounds(1) + "(assert (<= 1 2))")  # constant true: no property
    assert not spec.has_output_property


def test_too_many_disjuncts_is_an_error():
    text = _decl(1, 1) + _bounds(1) + "(assert (or (<= Y_0 1) (>= Y_0 2)))\n" * 14
    with pytest.raises(InputError, match="more than 10000 disjuncts"):
        parse_vnnlib(text, "big.vnnlib")


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("(assert (<= X_0 1)", "f.vnnlib:3: '(' is never closed"),
        ("(assert (<= X_0 1)))", "f.vnnlib:3: unexpected ')'"),
        ("(assert (<= X_0 1)) (foo X_0)", "f.vnnlib:3: unknown command 'foo'"),
        ("(assert (<= X_7 1))", "f.vnnlib:3: undeclared variable X_7"),
        ("(assert (<= (* X_0 X_1) 1))", "f.vnnlib:3: non-linear"),
        ("(assert (<= X_0 Y_0))", "f.vnnlib:3: an assertion mixes input and output"),
        ("(assert (<= (+ X_0 X_1) 1))", "f.vnnlib:3: only bounds on single inputs"),
        ("(assert (not (<= X_0 1)))", "f.vnnlib:3: unsupported formula operator 'not'"),
        ("(assert (<= X_0 abc))", "f.vnnlib:3: undeclared variable abc"),
        ("(assert (<= X_0 1 [2]))", "f.vnnlib:3: index"),
        ("(assert (<= X_0 \"1))", "f.vnnlib:3: unterminated string"),
        ("(assert (<= X_0 (/ 1 X_1)))", "f.vnnlib:3: .* constant divisor"),
        ("(assert (>= X_0 2))", "empty"),
    ],
)
def test_errors_name_file_and_line(body, fragment):
    text = "(declare-const X_0 Real) (declare-const X_1 Real)\n(declare-const Y_0 Real)\n" + body + "\n"
    if "X_1" not in body:
        text += "(assert (>= X_1 0)) (assert (<= X_1 1))\n"
    if "X_0 1)" not in body and "X_0 \"" not in body:
        text += "(assert (<= X_0 1))\n"
    if "(>= X_0" not in body:
        text += "(assert (>= X_0 0))\n"
    text += "(assert (>= X_1 0)) (assert (<= X_1 1))\n"
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_vnnlib(text, "f.vnnlib")


def test_missing_bounds_and_declarations():
    with pytest.raises(InputError, match="input X_1 has no upper bound"):
        parse_vnnlib(_decl(2, 1) + "(assert (>= X_0 0)) (assert (<= X_0 1)) (assert (>= X_1 0))", "m.vnnlib")
    with pytest.raises(InputError, match="X_2 is declared but X_1 is not"):
        parse_vnnlib("(declare-const X_0 Real) (declare-const X_2 Real)")
    with pytest.raises(InputError, match="unsupported variable 'Z_0'"):
        parse_vnnlib("(declare-const Z_0 Real)")
    with pytest.raises(InputError, match="declared twice"):
        parse_vnnlib("(declare-const X_0 Real) (declare-const X_0 Real)")
    with pytest.raises(InputError, match="no variables declared"):
        parse_vnnlib("; empty\n")


def test_read_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_vnnlib(tmp_path / "nope.vnnlib")
    bad = tmp_path / "bad.vnnlib"
    bad.write_text(_decl(1, 1) + "\n\n(assert (<= X_0 1)\n")
    with pytest.raises(InputError, match=r"bad.vnnlib:5: '\(' is never closed"):
        read_vnnlib(bad)


def test_linear_constraint_helpers():
    c = LinearConstraint(np.array([1.0, -2.0]), 0.5, "<")
    assert c.describe() == "Y_0 - 2*Y_1 < 0.5"
    np.testing.assert_array_equal(c.holds(np.array([[0.0, 0.0], [3.0, 1.0], [2.5, 1.0]])), [True, False, False])
    coeffs, rhs, op = c  # unpacks as (coeffs, rhs, op)
    assert rhs == 0.5 and op == "<"


# ------------------------------------------------------------------------------------------ VNN-LIB 2.0 twins
TWIN_TIES = """\
(vnnlib-version <2.0>)
; f and its compressed twin g
(declare-network f
    (declare-input  X_f Real [3])
    (declare-output Y_f Real [2]))
(declare-network g
    (isomorphic-to f)
    (declare-input  X_g Real [3] "input")
    (declare-output Y_g Real [2] "output"))
(assert (== X_g[0] X_f[0]))
(assert (and (== X_f[1] X_g[1]) (= X_g [2] X_f [2])))
(assert (<= 0.0 X_f[0])) (assert (<= X_f[0] 1.0))
(assert (<= -1 X_f_1)) (assert (<= X_f_1 1))
(assert (<= (* -1.0 X_f[2]) 0.0)) (assert (<= X_f[2] 2.0))
(assert (<= X_g[2] 1.5))
(assert (or (>= (- Y_g[0] Y_f[0]) 0.05) (<= (- Y_g[0] Y_f[0]) -0.05)))
"""


def test_vnnlib2_twin_with_explicit_ties(tmp_path):
    path = tmp_path / "twin.vnnlib"
    path.write_text(TWIN_TIES)
    spec = read_vnnlib(path)
    assert spec.version == "2.0" and spec.is_twin
    assert spec.networks == ("f", "g") and spec.relations == {"g": ("isomorphic-to", "f")}
    assert spec.n_inputs == 3 and spec.n_outputs == 2 and spec.output_sizes == (2, 2)
    # the bound on the tied X_g[2] tightens the shared input
    np.testing.assert_array_equal(spec.box.lower, [0.0, -1.0, 0.0])
    np.testing.assert_array_equal(spec.box.upper, [1.0, 1.0, 1.5])
    (up,), (down,) = spec.output_constraints
    c1, c2 = spec.twin_coeffs(up.coeffs)
    np.testing.assert_array_equal(c1, [1.0, 0.0])  # -(g0 - f0) <= -0.05
    np.testing.assert_array_equal(c2, [-1.0, 0.0])
    assert up.rhs == -0.05
    c1, c2 = spec.twin_coeffs(down.coeffs)
    np.testing.assert_array_equal(c1, [-1.0, 0.0])
    np.testing.assert_array_equal(c2, [1.0, 0.0])
    assert down.rhs == -0.05
    assert set(spec.split_outputs(up.coeffs)) == {"f", "g"}


TWIN_EQUAL_TO = """\
(vnnlib-version <2.0>)
(declare-network f (declare-input X Real [1,3]) (declare-output Y Real [1,2]))
(declare-network g (equal-to f) (declare-input Xg Real [1,3]) (declare-output Yg Real [1,2]))
(assert (>= X[0,0] 0)) (assert (<= X[0,0] 1))
(assert (>= X[0,1] 0)) (assert (<= X[0,1] 1))
(assert (>= X[0,2] -1)) (assert (<= Xg[0,2] 1))
(assert (>= (- Yg[0,1] Y[0,1]) 0.1))
"""


def test_vnnlib2_equal_to_ties_inputs_and_multi_index():
    spec = parse_vnnlib(TWIN_EQUAL_TO, "eq.vnnlib", n_inputs=3)
    assert spec.input_shape == (1, 3)
    assert spec.box == spec.boxes[0]
    np.testing.assert_array_equal(spec.box.lower, [0.0, 0.0, -1.0])
    np.testing.assert_array_equal(spec.box.upper, [1.0, 1.0, 1.0])
    ((c,),) = spec.output_constraints
    c1, c2 = spec.twin_coeffs(c.coeffs)
    np.testing.assert_array_equal(c1, [0.0, 1.0])
    np.testing.assert_array_equal(c2, [0.0, -1.0])
    assert c.rhs == -0.1


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (("(equal-to f) ", ""), "is not tied to"),
        (("(equal-to f) ", "(isomorphic-to f) "), "is not tied to"),
        (("(equal-to f) ", "(equal-to h) "), "undeclared network 'h'"),
        (("(declare-input Xg Real [1,3])", "(declare-input Xg Real [1,4])"), "have 4 and 3 elements"),
        (
            ("(declare-output Yg Real [1,2])", '(declare-hidden H Real [4] "h") (declare-output Yg Real [1,2])'),
            "declare-hidden",
        ),
        (("(assert (>= X[0,0] 0))", "(assert (>= X[0,3] 0))"), r"X\[0,3\] does not fit shape"),
        (("(assert (>= X[0,0] 0))", "(assert (>= X 0))"), "give an index"),
        (("(assert (>= X[0,0] 0))", "(assert (>= X[0,0] 0)) (declare-const X_0 Real)"), "mixes VNN-LIB 1.0"),
        (("(assert (<= X[0,0] 1))", "(assert (<= X[0,0] Yg[0,0]))"), "mixes input and output"),
    ],
)
def test_vnnlib2_errors(edit, fragment):
    text = TWIN_EQUAL_TO.replace(*edit)
    assert text != TWIN_EQUAL_TO
    with pytest.raises(InputError, match=fragment):
        parse_vnnlib(text, "eq.vnnlib")


def test_vnnlib2_permuted_ties_are_rejected():
    text = TWIN_TIES.replace("(assert (== X_g[0] X_f[0]))", "(assert (== X_g[0] X_f[1]))")
    text = text.replace("(== X_f[1] X_g[1])", "(== X_f[0] X_g[1])")
    with pytest.raises(InputError, match="element by element"):
        parse_vnnlib(text, "perm.vnnlib")


def test_vnnlib2_error_has_line_number():
    text = TWIN_TIES.replace("(assert (<= X_g[2] 1.5))", "(assert (<= X_g[7] 1.5))")
    with pytest.raises(InputError, match=r"twin.vnnlib:15: index X_g\[7\] out of range"):
        parse_vnnlib(text, "twin.vnnlib")

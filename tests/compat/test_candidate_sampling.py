"""Candidate samplers, ``tf.nn.nce_loss`` and ``tf.nn.sampled_softmax_loss``.

The losses are checked with ``sampled_values`` given explicitly against values recorded
from TensorFlow 2.21's ``tf.compat.v1`` on the same program; the samplers' expected
counts against TF 2.21's outputs (its classes fed to our formulas); their draws
statistically (fixed seeds, so the bounds are checked on fixed numbers)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
import tracejit.compat.v1 as tf
from tracejit.ir.errors import ParamError, ShapeError
from tracejit.trace import candidate_sampling as cs


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


W = np.array([
    [0.001230153371579945, 0.2987455427646637, -0.27413785457611084, -0.8905918598175049],
    [-0.454670786857605, -0.9916465282440186, 0.0601436011493206, 1.3402152061462402],
    [-0.49220651388168335, -0.6204748749732971, 0.4898420572280884, 0.35688701272010803],
    [0.1054142490029335, -0.9304680228233337, -0.02925182320177555, 0.695303201675415],
    [-1.3442145586013794, -0.45761576294898987, -1.9012227058410645, -1.289537787437439],
    [-1.8417350053787231, -0.23509113490581512, -1.267446517944336, 0.27126434445381165],
    [0.15675108134746552, -0.18693093955516815, -2.5167596340179443, -0.5386928915977478],
    [-0.048500943928956985, 0.11330898851156235, -1.5301357507705688, -0.47775328159332275],
    [-0.978519082069397, -0.8088372349739075, 1.0608986616134644, -0.8075346946716309],
    [-0.03252170607447624, 0.8843898773193359, -0.5836004614830017, -0.11170195043087006]],
    np.float32)
BIASES = np.array([0.11046414077281952, 0.06378177553415298, -1.2250558137893677,
                   0.07614023238420486, 1.3588234186172485, -1.5471446514129639,
                   0.859382688999176, 0.11935402452945709, -0.6414703726768494,
                   2.0004165172576904], np.float32)
INPUTS = np.array([
    [0.7622597217559814, -1.1992888450622559, 0.07451622933149338, 0.576689600944519],
    [-0.18878212571144104, 0.6829102635383606, -0.06651732325553894, 0.6672475337982178],
    [1.4385225772857666, -0.6756622791290283, 0.20313860476016998, -0.46330758929252625]],
    np.float32)
LABELS = np.array([[2, 5], [7, 7], [0, 9]], np.int64)      # num_true = 2; 7 twice
SAMPLED = (np.array([5, 1, 7, 3], np.int64),               # 5 and 7 are accidental hits
           np.array([[0.5, 0.25], [0.125, 0.125], [0.75, 0.0625]], np.float32),
           np.array([0.3, 0.6, 0.2, 0.4], np.float32))

# TensorFlow 2.21, tf.compat.v1, the program of test_sampled_losses_match_tensorflow
TF_LOSSES = {
    "nce": [8.180479049682617, 7.233710289001465, 6.854675769805908],
    "nce_hits": [7.9606781005859375, 5.451200008392334, 6.854675769805908],
    "softmax": [3.8705203533172607, 1.2092247009277344, 1.9334375858306885],
    "softmax_hits": [3.86141037940979, 1.0027934312820435, 1.9334375858306885],
}
TF_GRADS = {   # of sum(nce_hits) + sum(softmax_hits)
    "weights": [
        [-0.48860326409339905, 0.2294929325580597, -0.06899730861186981, 0.1573653370141983],
        [1.519510269165039, -1.266574501991272, 0.14115369319915771, 1.0203551054000854],
        [-0.3352963328361511, 0.5275329947471619, -0.0327775664627552, -0.2536693215370178],
        [2.188082456588745, -1.754664659500122, 0.2301291525363922, 0.9485329389572144],
        [0.0, 0.0, 0.0, 0.0],
        [-0.6332918405532837, 1.281913161277771, -0.08729259669780731, -0.07076361775398254],
        [0.0, 0.0, 0.0, 0.0],
        [1.8428322076797485, -1.3049302101135254, 0.2107166051864624, 0.440509170293808],
        [0.0, 0.0, 0.0, 0.0],
        [1.1772100925445557, -0.5529259443283081, 0.16623778641223907, -0.3791462182998657]],
    "biases": [-0.3396562933921814, 2.560094118118286, -0.43987149000167847,
               3.0893235206604004, 0.0, -0.14309394359588623, 0.0, 2.271815299987793, 0.0,
               0.8183466196060181],
    "inputs": [
        [1.164867877960205, -1.9977984428405762, -0.5677260756492615, 1.8597660064697266],
        [-1.3786368370056152, -1.627032995223999, -1.4872585535049438, 1.560244083404541],
        [-0.2817405164241791, -0.6021407246589661, -1.7761749029159546, 1.0889999866485596]],
}


def _losses(weights, biases, inputs, **kwargs):
    values = tuple(tf.constant(v) for v in SAMPLED)
    common = dict(labels=LABELS, inputs=inputs, num_sampled=4, num_classes=10, num_true=2,
                  sampled_values=values, **kwargs)
    return {
        "nce": tf.nn.nce_loss(weights, biases, **common),
        "nce_hits": tf.nn.nce_loss(weights, biases, remove_accidental_hits=True, **common),
        "softmax": tf.nn.sampled_softmax_loss(weights, biases, remove_accidental_hits=False,
                                              **common),
        "softmax_hits": tf.nn.sampled_softmax_loss(weights, biases, **common),
    }


def test_sampled_losses_match_tensorflow():
    weights, biases, inputs = tf.Variable(W), tf.Variable(BIASES), tf.Variable(INPUTS)
    losses = _losses(weights, biases, inputs)
    assert losses["nce"].shape.as_list() == [3]
    total = tf.reduce_sum(losses["nce_hits"]) + tf.reduce_sum(losses["softmax_hits"])
    grads = tf.gradients(total, [weights, biases, inputs])
    # the weight and bias tables are read by a lookup: row gradients, as in TF
    assert isinstance(grads[0], tf.IndexedSlices) and isinstance(grads[1], tf.IndexedSlices)
    dense = [tf.convert_to_tensor(grads[0]), tf.convert_to_tensor(grads[1]), grads[2]]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        found, found_grads = sess.run([losses, dense])
    for key, expected in TF_LOSSES.items():
        np.testing.assert_allclose(found[key], expected, rtol=2e-6, err_msg=key)
    for got, key in zip(found_grads, ["weights", "biases", "inputs"], strict=True):
        np.testing.assert_allclose(got, TF_GRADS[key], rtol=2e-6, atol=1e-6, err_msg=key)


def test_partitioned_weights_give_the_same_loss():
    # TF 2.21: nce_loss over the same table in two "div" partitions equals TF_LOSSES["nce"]
    weights = [tf.Variable(W[:5]), tf.Variable(W[5:])]
    biases = [tf.Variable(BIASES[:5]), tf.Variable(BIASES[5:])]
    loss = _losses(weights, biases, tf.constant(INPUTS), partition_strategy="div")["nce"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(loss), TF_LOSSES["nce"], rtol=2e-6)


def _tries_behind(probability: float, expected: float, count: int) -> int:
    """The number of draws a unique sampler made, from one expected count: ``count``
    when it is ``count * p`` (no draw was rejected), else from -expm1(tries * log1p(-p))."""
    if np.isclose(expected, count * probability, rtol=1e-6):
        return count
    tries = np.log1p(-expected) / np.log1p(-probability)
    assert abs(tries - round(tries)) < 1e-3
    return int(round(tries))


# TensorFlow 2.21: samplers on true_classes [[0], [3], [40]], range_max = 50, graph seed 3
# (classes, true_expected_count, sampled_expected_count)
TF_SAMPLERS = {
    ("log_uniform", True): (
        [0, 1, 11, 10, 12, 3, 18, 17, 7, 4, 16, 5],
        [0.9748985767364502, 0.6704800128936768, 0.11024253815412521],
        [0.9748985767364502, 0.8735505938529968, 0.32347550988197327, 0.3463561534881592,
         0.3033933639526367, 0.6704800128936768, 0.2208086997270584, 0.2313237190246582,
         0.4389074444770813, 0.5942934155464172, 0.24288296699523926, 0.5322902798652649]),
    ("log_uniform", False): (
        [0, 1, 11, 0, 0, 0, 10, 12, 3, 18, 17, 7],
        [2.11549711227417, 0.6810380220413208, 0.0735461413860321],
        [2.11549711227417, 1.2374866008758545, 0.24429172277450562, 2.11549711227417,
         2.11549711227417, 2.11549711227417, 0.26556023955345154, 0.2261788249015808,
         0.6810380220413208, 0.15654802322387695, 0.1650140881538391, 0.35947585105895996]),
    ("uniform", True): ([49, 13, 0, 14, 2, 31, 27, 34, 28, 42, 40, 18],
                        [0.2906782329082489] * 3, [0.2906782329082489] * 12),
    ("uniform", False): ([49, 13, 0, 14, 2, 0, 31, 27, 27, 2, 34, 28],
                         [0.23999999463558197] * 3, [0.23999999463558197] * 12),
    ("unigram", True): (
        [45, 34, 14, 23, 22, 32],
        [0.010978547856211662, 0.03105201944708824, 0.17788231372833252],
        [0.19391581416130066, 0.15797775983810425, 0.08367839455604553, 0.11904284358024597,
         0.11530303955078125, 0.15115772187709808]),
}
DISTRIBUTIONS = {
    "log_uniform": lambda: cs.log_uniform(50),
    "uniform": lambda: cs.uniform(50),
    "unigram": lambda: cs.fixed_unigram(50, list(range(1, 51)), distortion=0.75),
}


@pytest.mark.parametrize("kind, unique", sorted(TF_SAMPLERS))
def test_expected_counts_follow_tensorflow(kind, unique):
    classes, true_expected, sampled_expected = TF_SAMPLERS[kind, unique]
    dist = DISTRIBUTIONS[kind]()
    count = len(classes)
    tries = count
    if unique:
        first = float(np.asarray(dist.probability(np.array([classes[0]])))[0])
        tries = _tries_behind(first, sampled_expected[0], count)
    for chosen, expected in (([[0], [3], [40]], true_expected), (classes, sampled_expected)):
        got = cs.expected_count(dist.probability(np.array(chosen)), count, np.int32(tries))
        np.testing.assert_allclose(np.asarray(got).ravel(), expected, rtol=1e-6)


def _draws(sampler, runs: int, **kwargs):
    tf.set_random_seed(11)
    classes = tf.constant([[0], [3]], tf.int64)
    out = sampler(classes, 1, **kwargs)
    with tf.Session() as sess:
        return [sess.run(out) for _ in range(runs)]


def test_sampled_classes_follow_the_distribution():
    # hand-derived probabilities; a chi-square statistic over 20 classes (19 degrees of
    # freedom: 43.8 is its 0.999 quantile) from 4000 draws with replacement
    for sampler, probability in (
            (tf.nn.log_uniform_candidate_sampler,
             np.log((np.arange(20) + 2.0) / (np.arange(20) + 1.0)) / np.log(21.0)),
            (tf.nn.uniform_candidate_sampler, np.full(20, 1 / 20)),
            (lambda c, n, **k: tf.nn.fixed_unigram_candidate_sampler(
                c, n, unigrams=np.arange(1.0, 21.0), distortion=0.5, **k),
             np.sqrt(np.arange(1.0, 21.0)) / np.sqrt(np.arange(1.0, 21.0)).sum())):
        (found, true_expected, sampled_expected), = _draws(
            sampler, 1, num_sampled=4000, unique=False, range_max=20)
        counts = np.bincount(found, minlength=20)
        assert counts.size == 20 and found.dtype == np.int64
        chi2 = ((counts - 4000 * probability) ** 2 / (4000 * probability)).sum()
        assert chi2 < 43.8
        np.testing.assert_allclose(sampled_expected, 4000 * probability[found], rtol=1e-5)
        np.testing.assert_allclose(true_expected.ravel(), 4000 * probability[[0, 3]],
                                   rtol=1e-5)


def test_unique_sampling_draws_distinct_classes_and_new_ones_each_run():
    runs = _draws(tf.nn.log_uniform_candidate_sampler, 30, num_sampled=8, unique=True,
                  range_max=12)
    seen = set()
    first_counts = np.zeros(12)
    for found, true_expected, sampled_expected in runs:
        assert len(set(found.tolist())) == 8 and found.min() >= 0 and found.max() < 12
        first = np.log((found[0] + 2.0) / (found[0] + 1.0)) / np.log(13.0)
        tries = _tries_behind(first, sampled_expected[0], 8)
        assert tries >= 8
        for classes, expected in ((found, sampled_expected), ([0, 3], true_expected)):
            p = np.log((np.asarray(classes) + 2.0) / (np.asarray(classes) + 1.0)) / np.log(13.0)
            np.testing.assert_allclose(expected.ravel(),
                                       -np.expm1(tries * np.log1p(-p)) if tries > 8
                                       else 8 * p, rtol=1e-5)
        seen.add(tuple(found.tolist()))
        first_counts[found[0]] += 1
    assert len(seen) > 20                           # each run draws anew
    assert first_counts[0] > first_counts[11]       # the first draw prefers small classes
    # the same seed gives the same classes in a new graph
    tf.reset_default_graph()
    again = _draws(tf.nn.log_uniform_candidate_sampler, 2, num_sampled=8, unique=True,
                   range_max=12)
    np.testing.assert_array_equal(again[1][0], runs[1][0])


def test_all_candidate_sampler_and_mistakes():
    classes, true_expected, sampled_expected = tf.nn.all_candidate_sampler(
        tf.constant([[1], [2]], tf.int64), 1, 5, True)
    with tf.Session() as sess:
        got = sess.run([classes, true_expected, sampled_expected])
    np.testing.assert_array_equal(got[0], np.arange(5))
    np.testing.assert_array_equal(got[1], np.ones((2, 1)))
    np.testing.assert_array_equal(got[2], np.ones(5))
    with pytest.raises(ParamError, match="range is too small"):
        tf.nn.log_uniform_candidate_sampler(tf.constant([[1]], tf.int64), 1, 6, True, 5)
    with pytest.raises(ShapeError, match="num_true=2"):
        tf.nn.uniform_candidate_sampler(tf.constant([[1]], tf.int64), 2, 3, True, 5)
    with pytest.raises(ValueError, match="exactly one of vocab_file and unigrams"):
        tf.nn.fixed_unigram_candidate_sampler(tf.constant([[1]], tf.int64), 1, 2, True, 5)
    with pytest.raises(ShapeError, match="labels must be"):
        tf.nn.nce_loss(tf.constant(W), tf.constant(BIASES), tf.constant([[1, 2]]),
                       tf.constant(INPUTS), 2, 10)


def test_core_nce_loss_in_jit_draws_from_its_key():
    # the same key gives the same classes (and loss), another key others; with
    # sampled_values given the loss is TF_LOSSES["nce"] (TensorFlow 2.21)
    @tj.jit
    def loss(key):
        return tj.nn.nce_loss(W, BIASES, LABELS, INPUTS, 4, 10, num_true=2, key=key)

    first, again, other = (np.asarray(loss(tj.random.key(k))) for k in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert first.shape == (3,) and np.all(np.isfinite(first))
    assert not np.array_equal(first, other)
    given = tj.nn.nce_loss(W, BIASES, LABELS, INPUTS, 4, 10, num_true=2,
                           sampled_values=SAMPLED)
    np.testing.assert_allclose(np.asarray(given), TF_LOSSES["nce"], rtol=2e-6)
    with pytest.raises(ParamError, match="sampled_values"):
        tj.nn.nce_loss(W, BIASES, LABELS, INPUTS, 4, 10, num_true=2)

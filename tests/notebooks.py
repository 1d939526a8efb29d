"""The seed notebooks' set-ups and printed numbers (../shared/seeds/), shared by tests."""
import numpy as np

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0], dtype=float)


def legacy_normal(seed, scale=1.0, n_inputs=2, hidden=4):
    """Notebooks 000/002: np.random.seed(s); W1 = randn(2, 4) * s; W2 = randn(4, 1) * s; zero biases."""
    rs = np.random.RandomState(seed)
    W1 = rs.randn(n_inputs, hidden) * scale
    W2 = rs.randn(hidden, 1) * scale
    return W1, np.zeros(hidden), W2[:, 0], 0.0


def legacy_uniform_001():
    """Notebook 001: seed 42; rand in column layout W1 (h, d), b1 (h, 1), W2 (o, h), b2 (o, 1)."""
    rs = np.random.RandomState(42)
    W1c = rs.rand(2, 2)
    b1c = rs.rand(2, 1)
    W2c = rs.rand(1, 2)
    b2c = rs.rand(1, 1)
    return W1c.T.copy(), b1c[:, 0].copy(), W2c[0].copy(), float(b2c[0, 0])


NB001_X = np.array([[0.0, 1.0]])
NB001_Y = np.array([1.0])
NB001_W1_AFTER_ONE = np.array([[0.37454012, 0.95075702], [0.73199394, 0.59940052]])  # (h, d)
NB001_B1_AFTER_ONE = np.array([0.15606136, 0.15673655])
NB001_W2_AFTER_ONE = np.array([0.06104323, 0.86885486])
NB001_B2_AFTER_ONE = 0.60505318
# Losses printed at "Epoch 1, 1001, ..., 9001": states 1, 1001, ... counting the step before the loop.
NB001_STATES = np.arange(1, 10000, 1000)
NB001_LOSSES = np.array([
    0.050200055006009964,  # the notebook printed ...915 with an older NumPy
    0.002508771745050967, 0.0012017913077545835, 0.0007796953977827689,
    0.0005737736312857965, 0.0004525050473037121, 0.000372843044332794,
    0.0003166239447419777, 0.0002748846634192015, 0.00024270155003633162,
])

NB002_STATES = np.arange(0, 10000, 1000)
NB002_LOSSES = np.array([0.2832, 0.2452, 0.2124, 0.1503, 0.0572, 0.0209, 0.0107, 0.0067, 0.0047, 0.0035])
NB002_W1 = np.array([[5.22722431, 0.98707488, 0.68186502, 6.01151874],
                     [-3.16613113, -3.99951104, 2.91152228, 5.80878724]])
NB002_W2 = np.array([-6.57254498, 4.63984181, -3.9456002, 8.04506769])
NB002_B1 = np.array([1.24785544, 0.50324162, -2.14896976, -2.053226])
NB002_B2 = -1.53894177
NB002_PREDICTIONS = np.array([0.0372988, 0.94914558, 0.94481534, 0.06424562])

NB000_SATURATED_STATES = np.arange(0, 5000, 1000)
NB000_SATURATED_LOSSES = np.array([0.500492, 0.500061, 0.500025, 0.500013, 0.500008])
NB000_FIXED_STATES = np.arange(0, 10000, 1000)
NB000_FIXED_LOSSES = np.array([0.694367, 0.693149, 0.693146, 0.693144, 0.693139,
                               0.693125, 0.693008, 0.626327, 0.050549, 0.015803])
NB000_FIXED_PREDICTIONS = np.array([0, 1, 1, 0])

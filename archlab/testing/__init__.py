"""Test oracles and fixture writers: code the tests and benchmarks share, never imported by
the product (``archlab`` commands do not import this package; tests/test_imports.py checks).

    reference.py     hand-written eager networks (VideoResNet layout) that archlab's built
                     models must match weight for weight: the oracle of the bench and tests
    reference_pv.py  the same for the pytorchvideo-style presets (CSN, Slow, R(2+1)D-50, TSM, X3D)
    p3d_prototxt.py  the official P3D-199 written from its Caffe deploy prototxt (parity oracle)
    ucf101.py        a tiny UCF101-shaped tree of real XVID AVIs plus split lists
    study.py         a study directory as the search leaves it, from trial records
"""

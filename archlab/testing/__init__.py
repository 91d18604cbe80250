"""Test oracles and fixture writers: code the tests and benchmarks share, never imported by
the product (``archlab`` commands do not import this package; tests/test_imports.py checks).

    reference.py  hand-written eager networks (VideoResNet layout) that archlab's built
                  models must match weight for weight: the oracle of the bench and tests
    ucf101.py     a tiny UCF101-shaped tree of real XVID AVIs plus split lists
    study.py      a study directory as the search leaves it, from trial records
"""

"""Tests never calibrate on first use: a calibration takes minutes and would make every
test that trains depend on this machine's choice. Tests of calibration set it themselves."""

import os

os.environ["ARCHLAB_CALIBRATION"] = "off"

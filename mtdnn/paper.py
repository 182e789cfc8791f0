"""The paper's reported numbers (arXiv 1901.11504 v2), printed beside ours."""

from __future__ import annotations

# GLUE dev, Table 3: column -> (BERT-large, MT-DNN)
GLUE_DEV = {
    "cola/mcc": (61.8, 63.5),
    "sst2/accuracy": (93.5, 94.3),
    "mrpc/accuracy": (89.5, 91.0),
    "mrpc/f1": (85.8, 87.5),
    "stsb/pearson": (89.6, 90.7),
    "stsb/spearman": (89.3, 90.6),
    "qqp/accuracy": (91.1, 91.9),
    "qqp/f1": (88.0, 89.2),
    "mnli-m/accuracy": (86.3, 87.1),
    "mnli-mm/accuracy": (86.2, 86.7),
    "qnli/accuracy": (92.4, 92.9),
    "rte/accuracy": (71.1, 83.4),
}

# Domain adaptation, Table 4 (dev accuracy): dataset -> {fraction: (BERT-base, MT-DNN-base)}
ADAPT = {
    "snli": {0.001: (52.5, 82.1), 0.01: (78.1, 85.2), 0.1: (86.7, 88.4), 1.0: (91.0, 91.5)},
    "scitail": {0.001: (51.2, 81.9), 0.01: (82.2, 88.3), 0.1: (90.5, 91.1), 1.0: (94.3, 95.7)},
}
# Training-set sizes behind those fractions (the paper's counts)
ADAPT_SIZES = {
    "snli": {0.001: 549, 0.01: 5493, 0.1: 54936, 1.0: 549367},
    "scitail": {0.001: 23, 0.01: 235, 0.1: 2359, 1.0: 23596},
}

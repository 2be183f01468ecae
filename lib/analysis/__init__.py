"""What the study concludes: the multi-seed final evaluation of each cell's validation choice
(``final``, the only reader of test labels), block-bootstrap statistics (``stats``), one-factor
law fits (``scaling``) and the joint law L(N, D) (``joint``). May import every stage up to
``search``."""

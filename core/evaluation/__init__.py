"""Evaluation: the measurements that say whether a generated world is good.

One module per metric family -- image_quality (PSNR/SSIM), rollouts + drift (drift curve,
controllability, drift-free horizon), idm + effects + idm_train (action accuracy), physics
(platformer rules), lpips and fvd (standard weights, found by weights.py) -- brought
together by evaluate.py and written out by report.py. `pocketworld evaluate` drives it.
"""

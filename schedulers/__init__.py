"""Search spaces, search algorithms and trial schedulers, built from plain config dicts.

Nothing here is constructed at import time: each builder is called once per experiment.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

# One thread: the networks in the tests are small, and on a 2-core CI machine a second thread
# mostly adds synchronisation cost (measured: 8–10 ms vs 23–540 ms per small conv step).
torch.set_num_threads(1)

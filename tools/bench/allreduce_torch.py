# The peer of tools/bench/distributed.ts: PyTorch's own Gloo all-reduce (torch.distributed)
# on loopback, one rank per process, the same sizes and repetitions. Prints one JSON line (rank 0).
#   RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29611 python3 tools/bench/allreduce_torch.py 1,16,64 5
import json, os, sys, time
import torch
import torch.distributed as dist

torch.set_num_threads(1)
dist.init_process_group('gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))
sizes = [int(s) for s in sys.argv[1].split(',')]
reps = int(sys.argv[2])
out = {}
for mb in sizes:
    t = torch.ones(mb * (1 << 20) // 4)
    dist.all_reduce(t)  # warm-up
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(reps):
        dist.all_reduce(t)
    out[mb] = (time.perf_counter() - t0) / reps * 1000
if dist.get_rank() == 0:
    print(json.dumps({'engine': f'PyTorch {torch.__version__} torch.distributed (gloo)', 'ms': out}))
dist.destroy_process_group()

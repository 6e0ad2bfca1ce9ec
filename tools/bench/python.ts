// The Python that has torch: $PYTHON, else the first of python3 / Debian's /usr/bin/python3
// (python3-torch installs into the system Python, which a pyenv python3 may shadow).
import { spawnSync } from 'node:child_process';

export function pythonWithTorch(): string {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3']) {
    if (py && spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return 'python3';
}

// `--gpus auto`: the GPUs this process may use, found without starting Python.
import { execa } from "execa";

/**
 * CUDA_VISIBLE_DEVICES when set (empty or -1 means none), else the indices nvidia-smi
 * lists; null when there are none, meaning CPU slots.
 */
export async function detectGpus(env: NodeJS.ProcessEnv = process.env): Promise<string[] | null> {
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined) {
    const ids = visible.split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "-1");
    return ids.length ? ids : null;
  }
  const smi = await execa("nvidia-smi", ["--query-gpu=index", "--format=csv,noheader"], { reject: false, timeout: 20_000 });
  if (smi.failed) return null;
  const ids = String(smi.stdout).split("\n").map((s) => s.trim()).filter((s) => /^\d+$/.test(s));
  return ids.length ? ids : null;
}

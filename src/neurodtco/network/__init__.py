"""The software network: architectures (MLP, CNN, small ResNet, any supported ``nn.Sequential``) with the
saturating activations the circuit implements, their training, model files, and their lowering to
``neurodtco.ops``.
"""

from .arch import (ARCH_HELP, PRESETS, Activation, ArchConfig, Architecture, BatchNorm, Conv2d, Flatten, Linear,
                   Pool, Residual, parse_arch)
from .layers import ResidualBlock, Saturate
from .lower import SUPPORTED, lower_sequential, run_ops
from .mlp import MLP, NetworkConfig, forward_float64
from .trained import ARCH_FORMAT, FORMAT, TrainedNetwork, check_split, load_network, split_record
from .training import cache_dir, cached_fit, default_network, fit, image_shape, make_config, train, train_architecture

__all__ = ["ARCH_FORMAT", "ARCH_HELP", "FORMAT", "MLP", "PRESETS", "SUPPORTED", "Activation", "ArchConfig",
           "Architecture", "BatchNorm", "Conv2d", "Flatten", "Linear", "NetworkConfig", "Pool", "Residual",
           "ResidualBlock", "Saturate", "TrainedNetwork", "cache_dir", "cached_fit", "default_network", "fit", "forward_float64",
           "check_split", "image_shape", "load_network", "split_record", "lower_sequential", "make_config", "parse_arch", "run_ops", "train",
           "train_architecture"]

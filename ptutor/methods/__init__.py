"""One module per method; each registers a config and a wrapper model."""
from .base import (METHODS, InjectedLayer, MergeableLayer, Method, MethodConfig, config_from_dict, find_modules, freeze,
                   inject, register, replace_modules, task_head)
# The order of registration is the order of every table and shoot-out (the baselines, then from the
# cheapest change to the base to the largest): import a new method's module where it belongs.
from .finetune import FineTuneConfig, FullFineTune
from .probe import LinearProbe, ProbeConfig
from .bitfit import BiasLinear, BitFit, BitFitConfig
from .ia3 import IA3, IA3Config, IA3Linear
from .prompt_tuning import PromptTuning, PromptTuningConfig, SoftPromptMethod
from .p_tuning import PromptEncoder, PTuning, PTuningConfig
from .prefix import PrefixConfig, PrefixEncoder, PrefixTuning
from .adapters import AdapterConfig, AdapterLayer, Adapters
from .lora import Lora, LoraConfig, LoraLinear
from .dora import Dora, DoraConfig, DoraLinear
from .vera import Vera, VeraBasis, VeraConfig, VeraLinear
from .qlora import QLora, QLoraConfig
from .prefix_lora import PrefixLora, PrefixLoraConfig

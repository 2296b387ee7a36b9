"""One module per method; each registers a config and a wrapper model."""
from .base import (METHODS, InjectedLayer, Method, MethodConfig, config_from_dict, find_modules, freeze, inject,
                   register, replace_modules, task_head)
from .finetune import FineTuneConfig, FullFineTune, LinearProbe, ProbeConfig
from .prompt_tuning import PromptTuning, PromptTuningConfig, SoftPromptMethod
from .p_tuning import PromptEncoder, PTuning, PTuningConfig
from .prefix import PrefixConfig, PrefixEncoder, PrefixTuning
from .lora import Lora, LoraConfig, LoraLinear
from .qlora import QLora, QLoraConfig
from .prefix_lora import PrefixLora, PrefixLoraConfig
from .adapters import AdapterConfig, AdapterLayer, Adapters
from .bitfit import BiasLinear, BitFit, BitFitConfig

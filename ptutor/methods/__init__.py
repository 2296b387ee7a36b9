"""One module per method; each registers a config and a wrapper model."""
from .base import METHODS, Method, MethodConfig, config_from_dict, freeze, inject, register, task_head
from .finetune import FineTuneConfig, FullFineTune, LinearProbe, ProbeConfig
from .prompt_tuning import PromptTuning, PromptTuningConfig, SoftPromptMethod
from .p_tuning import PromptEncoder, PTuning, PTuningConfig
from .prefix import PrefixConfig, PrefixEncoder, PrefixTuning

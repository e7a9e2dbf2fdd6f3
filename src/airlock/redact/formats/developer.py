"""Prefixed formats of model providers, code hosts, package registries and CI.

PURE: no I/O. One row per format: kind, vendor, pattern, sample (a true example's template) and
lengths; ``patterns.token`` and ``patterns.named`` explain the rest. The formats are public facts
(vendors' prefixes, lengths, alphabets); the patterns and examples are our own.
"""

from __future__ import annotations

from airlock.redact.formats.common import HX, A, H, U
from airlock.redact.patterns import ESC_SLASH, Rule
from airlock.redact.patterns import token as T

# fmt: off
DEVELOPER: tuple[Rule, ...] = (
    # Model providers
    T("anthropic_admin_key", "Anthropic", rf"sk-ant-admin01-{U}+", "sk-ant-admin01-{u93}AA", (40, 200)),
    T("anthropic_api_key", "Anthropic", rf"sk-ant-(?:api|oat|ort|sid)[0-9][0-9]-{U}+", "sk-ant-api03-{u93}AA", (40, 200)),
    T("openai_api_key", "OpenAI", rf"sk-(?:(?:proj|svcacct|admin|None)-{U}+|{A}+T3BlbkFJ{A}+)", "sk-proj-{u58}T3BlbkFJ{u58}", (40, 400), glued=False),
    T("openai_legacy_key", "OpenAI / Stability / DeepSeek (sk- and 32 to 48 characters)", r"sk-[A-Za-z0-9]+", "sk-{a48}", (35, 51), glued=False, entropy=3.5),
    T("openrouter_api_key", "OpenRouter", rf"sk-or-v1-{H}+", "sk-or-v1-{h64}", (73, 73)),
    T("groq_api_key", "Groq", r"gsk_[A-Za-z0-9]+", "gsk_{a52}", (56, 56)),
    T("perplexity_api_key", "Perplexity", r"pplx-[A-Za-z0-9]+", "pplx-{a48}", (50, 60)),
    T("xai_api_key", "xAI", r"xai-[A-Za-z0-9]+", "xai-{a80}", (70, 90)),
    T("replicate_api_token", "Replicate", r"r8_[A-Za-z0-9]+", "r8_{a37}", (40, 40), glued=False),
    T("huggingface_token", "Hugging Face", r"(?:hf|api_org)_[A-Za-z0-9]+", "hf_{L34}", (33, 48), glued=False),
    T("langsmith_api_key", "LangChain LangSmith", rf"lsv2_(?:pt|sk)_{H}+_{H}+", "lsv2_pt_{h32}_{h10}", (50, 52)),
    T("pinecone_api_key", "Pinecone", rf"pcsk_{A}+_{A}+", "pcsk_{a5}_{a63}", (60, 90)),
    T("elevenlabs_api_key", "ElevenLabs", rf"sk_{H}+", "sk_{h48}", (51, 51), glued=False),
    # Code hosts and CI
    T("github_token", "GitHub", r"gh[pousr]_[A-Za-z0-9]+", "ghp_{a36}", (34, 1024)),
    T("github_fine_grained_pat", "GitHub", r"github_pat_[A-Za-z0-9_]+", "github_pat_11{U20}_{a59}", (40, 1024)),
    T("gitlab_pat", "GitLab", rf"gl(?:pat|ptt|dt|cbt|oas|imt|ft|soat|agent)-{U}+", "glpat-{u20}", (24, 1024)),
    T("gitlab_runner_token", "GitLab", rf"(?:glrt-|glrtr-|GR1348941){U}+", "glrt-{u20}", (24, 1024)),
    T("gitlab_feature_flag_token", "GitLab", rf"glffct-{U}+", "glffct-{u20}", (27, 1024)),
    T("bitbucket_app_password", "Atlassian Bitbucket", r"ATBB[A-Za-z0-9_=.\-]+", "ATBB{a32}", (32, 40), glued=False),
    T("atlassian_api_token", "Atlassian", r"ATATT3[A-Za-z0-9_=\-]+", "ATATT3{u186}", (150, 260)),
    T("circleci_token", "CircleCI", rf"CCIPAT_{A}+_{H}+", "CCIPAT_{a22}_{h40}", (60, 80)),
    T("buildkite_token", "Buildkite", rf"bkua_{H}+", "bkua_{h40}", (45, 45)),
    T("docker_hub_token", "Docker Hub", rf"dckr_(?:pat|oat)_{U}+", "dckr_pat_{u27}", (30, 50)),
    T("sourcegraph_token", "Sourcegraph", rf"sgp_(?:(?:{HX}+|local)_)?{HX}+", "sgp_{h16}_{h40}", (44, 80)),
    T("clojars_token", "Clojars", r"CLOJARS_[a-z0-9]+", "CLOJARS_{l60}", (68, 68)),
    T("rubygems_api_key", "RubyGems", rf"rubygems_{H}+", "rubygems_{h48}", (57, 57)),
    T("npm_token", "npm", r"npm_[A-Za-z0-9]+", "npm_{a36}", (40, 40)),
    T("packagist_token", "Private Packagist", rf"packagist_[ou][ru]t_{H}+", "packagist_uut_{h68}", (82, 82)),
    T("octopus_deploy_api_key", "Octopus Deploy", r"API-[A-Z0-9]+", "API-{U26}", (30, 36), glued=False),
    T("prefect_api_key", "Prefect", r"pnu_[a-zA-Z0-9]+", "pnu_{a36}", (40, 40)),
    T("pulumi_access_token", "Pulumi", rf"pul-{H}+", "pul-{h40}", (44, 44), glued=False),
    T("terraform_cloud_token", "HashiCorp Terraform", rf"{A}+\.atlasv1\.[A-Za-z0-9_=\-]+", "{a14}.atlasv1.{u67}", (70, 100), glued=False),
    T("vault_service_token", "HashiCorp Vault", rf"hvs\.{U}+", "hvs.{u94}", (90, 400)),
    T("vault_batch_token", "HashiCorp Vault", rf"hvb\.{U}+", "hvb.{u140}", (138, 400)),
    T("doppler_token", "Doppler", rf"dp\.(?:pt|st|ct|sa|scim|audit)\.(?:[a-z0-9_\-]+\.)?{A}+", "dp.pt.{a43}", (40, 90)),
    T("chieftools_token", "Chief Tools", r"ct[por]_[A-Za-z0-9]+", "ctp_{a36}", (34, 252), glued=False),
    T("django_secret_key", "Django (development key)", r"django-insecure-[A-Za-z0-9!@#$%^&*()_+=\-]+", "django-insecure-{a50}", (26, 300)),
    T("claude_code_session_url", "Anthropic Claude Code", rf"https?:{ESC_SLASH}{ESC_SLASH}claude\.ai{ESC_SLASH}code{ESC_SLASH}session_{A}+", "https://claude.ai/code/session_{a24}", (47, 300)),
    T("infracost_api_key", "Infracost", r"ico-[A-Za-z0-9]+", "ico-{a32}", (36, 36), glued=False),
    T("dbt_cloud_token", "dbt Cloud", rf"dbt[uc]_{U}+", "dbtu_{u40}", (40, 60)),
    T("harness_token", "Harness", rf"(?:pat|sat)\.{U}+\.{A}+\.{A}+", "pat.{u22}.{a24}.{a20}", (60, 80), glued=False),
    T("settlemint_token", "SettleMint", rf"sm_(?:pat|aat|sat)_{A}+", "sm_pat_{a16}", (23, 23)),
    T("readme_api_key", "ReadMe", r"rdme_[a-z0-9]+", "rdme_{l70}", (75, 75)),
)
# fmt: on

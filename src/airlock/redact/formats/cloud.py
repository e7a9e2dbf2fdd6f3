"""Prefixed formats of clouds, hosting and infrastructure services.

PURE: no I/O. One row per format: kind, vendor, pattern, sample (a true example's template) and
lengths; ``patterns.token`` and ``patterns.named`` explain the rest. The formats are public facts
(vendors' prefixes, lengths, alphabets); the patterns and examples are our own.
"""

from __future__ import annotations

from airlock.redact.formats.common import S_UUID, A, H, U
from airlock.redact.patterns import ESC_SLASH, Rule
from airlock.redact.patterns import token as T

# fmt: off
CLOUD: tuple[Rule, ...] = (
    # Clouds and hosting
    T("aws_bedrock_api_key", "AWS Bedrock", r"(?:ABSK(?:[A-Za-z0-9+=]|\\*/)+|bedrock-api-key-(?:[A-Za-z0-9+=_\-]|\\*/)+)", "ABSK{b128}", (60, 400), glued=False),
    T("azure_ad_client_secret", "Microsoft Entra ID", r"[A-Za-z0-9_~.]+Q~[A-Za-z0-9_~.\-]+", "{a3}8Q~{u34}", (37, 40), glued=False, shape=r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}"),
    T("google_api_key", "Google", rf"AIza{U}+", "AIza{u35}", (39, 39), glued=False),
    T("google_oauth_client_secret", "Google", rf"GOCSPX-{U}+", "GOCSPX-{u28}", (35, 35)),
    T("google_oauth_access_token", "Google", rf"ya29\.{U}+", "ya29.{u120}", (30, 2048), glued=False),
    T("digitalocean_token", "DigitalOcean", rf"do[por]_v1_{H}+", "dop_v1_{h64}", (71, 71)),
    T("alibaba_access_key_id", "Alibaba Cloud", r"LTAI[A-Za-z0-9]+", "LTAI{a20}", (24, 30), glued=False),
    T("tencent_secret_id", "Tencent Cloud", r"AKID[A-Za-z0-9]+", "AKID{a32}", (36, 36), glued=False),
    T("scaleway_access_key", "Scaleway", r"SCW[A-Z0-9]+", "SCW{U17}", (20, 20), glued=False, entropy=2.5),
    T("heroku_api_key_v2", "Heroku", rf"HRKU-AA{U}+", "HRKU-AA{u58}", (65, 65)),
    T("flyio_token", "Fly.io", r"(?:fo1_[A-Za-z0-9_\-]+|fm[12][ar]?_(?:[A-Za-z0-9+=]|\\*/)+)", "fm2_{b120}", (40, 2000)),
    T("cloudflare_origin_ca_key", "Cloudflare", rf"v1\.0-{H}+-{H}+", "v1.0-{h24}-{h146}", (170, 180), glued=False),
    T("databricks_token", "Databricks", rf"dapi{H}+(?:-[0-9])?", "dapi{h32}", (36, 38), glued=False),
    T("dynatrace_api_token", "Dynatrace", rf"dt0c01\.{A}+\.{A}+", "dt0c01.{U24}.{a64}", (96, 96)),
    T("netlify_token", "Netlify", r"nfp_[A-Za-z0-9]+", "nfp_{a36}", (40, 40)),
    T("render_api_key", "Render", r"rnd_[A-Za-z0-9]+", "rnd_{a32}", (36, 36), glued=False),
    T("supabase_token", "Supabase", rf"(?:sbp_{H}+|sb_secret_{U}+)", "sbp_{h40}", (30, 60)),
    T("planetscale_token", "PlanetScale", r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.\-]+", "pscale_tkn_{u43}", (40, 80)),
    T("openshift_token", "Red Hat OpenShift", rf"sha256~{U}+", "sha256~{u43}", (50, 50)),
    T("scalingo_token", "Scalingo", rf"tk-us-{U}+", "tk-us-{u48}", (54, 54)),
    T("tailscale_key", "Tailscale", rf"tskey-(?:api|auth|client|scim|webhook)-{A}+-{A}+", "tskey-auth-{a12}CNTRL-{a33}", (40, 90)),
    T("portainer_token", "Portainer", r"ptr_(?:[A-Za-z0-9+=]|\\*/)+", "ptr_{a43}=", (44, 200)),
    T("age_secret_key", "age", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]+", "AGE-SECRET-KEY-1{C58}", (74, 74)),
    T("onepassword_service_token", "1Password", r"ops_eyJ(?:[A-Za-z0-9+=_\-]|\\*/)+", "ops_eyJ{b300}", (200, 2000)),
    T("onepassword_secret_key", "1Password", r"A3-[A-Z0-9\-]+", "A3-{U6}-{U11}-{U5}-{U5}-{U5}", (33, 40), glued=False),
    T("jumpcloud_api_key", "JumpCloud", r"jca_[A-Za-z0-9]+", "jca_{a36}", (40, 40)),
    T("clickhouse_cloud_key", "ClickHouse Cloud", r"4b1d[A-Za-z0-9]+", "4b1d{a38}", (42, 42), glued=False),
    T("artifactory_api_key", "JFrog Artifactory", r"AKCp[A-Za-z0-9]+", "AKCp{a69}", (70, 76), glued=False),
    T("artifactory_reference_token", "JFrog Artifactory", r"cmVmd[A-Za-z0-9]+", "cmVmdGtu{a56}", (64, 64), glued=False),
    T("castai_api_key", "Cast AI", rf"castai_v1_{A}+_{A}+", "castai_v1_{a64}_{a8}", (83, 83)),
    T("azure_data_factory_key", "Microsoft Azure Data Factory", rf"IR@[A-Za-z0-9\-]+@[A-Za-z0-9_.\-]+@[A-Za-z0-9=\-]*@(?:[A-Za-z0-9+=]|{ESC_SLASH})+", "IR@" + S_UUID + "@adf-corp-001@we@{b43}=", (90, 300), glued=False),
    T("vault_legacy_token", "HashiCorp Vault", r"s\.[A-Za-z0-9]+", "s.{d1}{a23}", (26, 26), glued=False, entropy=3.5, shape=r"s\.(?=[A-Za-z]*[0-9])[A-Za-z0-9]{24}"),
    T("jwt_base64", "JSON Web Token, base64-encoded", rf"ZXlK(?:[A-Za-z0-9+=]|{ESC_SLASH})+", "ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlK{b80}", (60, 8192), glued=False),
)
# fmt: on

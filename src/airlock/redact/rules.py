"""The redaction rule table: one row per kind of secret (kind, vendor, pattern, checks, a true
and a false example). The README lists the kinds.

PURE: no I/O. The engine compiles ``RULES`` into one RE2 program and asks ``checks.accepts``
about every candidate it finds. How rows are written: ``patterns.py``. The formats are public
facts (vendors' prefixes, lengths, alphabets, checksums); patterns and examples are our own.

Order matters only for ties at the same position: tokens first, then named formats, then the
generic assignments.
"""

from __future__ import annotations

from airlock.redact.patterns import (
    ASSIGN,
    B64,
    EDGE,
    ESC_SLASH,
    NL,
    QUOTE,
    TOKEN,
    URL_PASS_CHAR,
    URL_USER,
    VALUE_CHAR,
    VALUE_END,
    Rule,
    named,
    token,
)

T = token
N = named
_U = TOKEN  # URL-safe base64: letters, digits, - and _
_A = "[A-Za-z0-9]"
_H = "[a-f0-9]"
_HX = "[a-fA-F0-9]"
_UUID = "[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}"
_S_UUID = "{h8}-{h4}-4{h3}-a{h3}-{h12}"
_B64 = rf"(?:[A-Za-z0-9+]|{ESC_SLASH})"

# Names of assignments whose value is a password, or a key / token / secret.
_PASSWORD_NAMES = r"(?i:pass(?:word|wd|phrase)?|pwd)"
_KEY_NAMES = (
    r"(?i:secret|token|api[_\-.]?key|apikey|access[_\-.]?key|private[_\-.]?key|auth[_\-.]?key"
    r"|client[_\-.]?secret|credentials?|signing[_\-.]?key|encryption[_\-.]?key|master[_\-.]?key"
    r"|session[_\-.]?key|x[_\-]api[_\-]key|webhook|app[_\-.]?key)"
)
_GENERIC_VALUE = r"(?:[A-Za-z0-9+_\-.~=]|\\*/)"

_PEM = "-----BEGIN RSA PRIVATE KEY-----\n{b64}\n{b64}\n{b40}==\n-----END RSA PRIVATE KEY-----\n"

HAND: tuple[Rule, ...] = (
    Rule(
        "private_key_pem",
        rf"(?P<secret>-----BEGIN[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----"
        rf"(?:{NL}(?:Proc-Type|DEK-Info|Comment):[^\\\n]*)*"
        # At least a few characters of body, so a run of bare headers is no candidate at all.
        rf"(?:{NL}|[ \t])*{B64}{B64}{B64}{B64}{B64}{B64}{B64}{B64}"
        rf"(?:{NL}|{B64}|[ \t])*"
        rf"(?:-----END[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----(?:{NL})?)?)",
        "private key-----",
        min_length=64,
        bare=True,
        vendor="PEM (RSA, EC, OpenSSH, PKCS #8, PGP)",
        sample=_PEM,
        counter="-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    ),
    Rule(
        "pypi_token",
        rf"(?P<secret>pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw){_U}+)",
        "pypi-age",
        min_length=60,
        bare=True,
        vendor="PyPI",
        sample="pypi-AgEIcHlwaS5vcmc{u70}",
        counter="pypi-AgEIcHlwaS5vcmc...",
    ),
    Rule(
        "slack_webhook",
        rf"(?P<secret>https?:{ESC_SLASH}{ESC_SLASH}hooks\.slack\.com{ESC_SLASH}"
        rf"(?:services|workflows|triggers){ESC_SLASH}(?:[A-Za-z0-9_]|{ESC_SLASH})+)",
        "hooks.slack.com",
        min_length=50,
        bare=True,
        vendor="Slack",
        sample="https://hooks.slack.com/services/T{U10}/B{U10}/{a24}",
        counter="https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    ),
    Rule(
        "aws_access_key_id",
        rf"{EDGE}(?P<secret>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]+)\b",
        "a",
        20,
        20,
        min_entropy=2.5,
        bare=True,
        vendor="Amazon Web Services",
        sample="AKIA{B16}",
        counter="AKIAIOSFODNN7EXAMPLE",
    ),
    Rule(
        "aws_secret_access_key",
        rf"(?i:aws_?secret_?(?:access_?)?key|secretaccesskey){ASSIGN}"
        rf"(?P<secret>(?:[A-Za-z0-9+]|{ESC_SLASH})+){VALUE_END}",
        "secret",
        40,
        40,
        min_entropy=3.5,
        vendor="Amazon Web Services",
        sample="AWS_SECRET_ACCESS_KEY={b40}",
        counter="aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        name="AWS_SECRET_ACCESS_KEY",
    ),
    Rule(
        "azure_storage_key",
        rf"(?i:AccountKey|SharedAccessKey)=(?P<secret>{B64}+)",
        "accountkey",
        40,
        min_entropy=3.5,
        vendor="Microsoft Azure",
        sample="DefaultEndpointsProtocol=https;AccountName=a;AccountKey={b86}==;",
        counter="AccountKey=<your-account-key>",
    ),
    Rule(
        "gcp_service_account_key",
        rf"private_key{QUOTE}[ \t]*:[ \t]*{QUOTE}(?P<secret>-----BEGIN PRIVATE KEY-----"
        rf"(?:{NL}|{B64})+(?:-----END PRIVATE KEY-----(?:{NL})?)?)",
        "private_key",
        min_length=64,
        secret_from="-----BEGIN PRIVATE KEY-----",  # noqa: S106 - a literal, no password
        vendor="Google Cloud",
        sample='{"private_key": "-----BEGIN PRIVATE KEY-----\\n{b64}\\n{b64}\\n-----END PRIVATE KEY-----\\n"}',
        counter='{"private_key_id": "{h40}"}',
    ),
    Rule(
        "jwt",
        rf"(?P<secret>eyJ{_U}+\.eyJ{_U}+\.{_U}+)",
        "eyj",
        min_length=40,
        min_entropy=3.0,
        bare=True,
        vendor="JSON Web Token (any issuer)",
        sample="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{u20}.{u43}",
        counter="eyJhbGciOiJIUzI1NiJ9.eyJ...",
    ),
)
"""Rows written by hand: key files, URLs and the formats the helpers do not fit."""

# fmt: off
TOKENS: tuple[Rule, ...] = (
    # Model providers
    T("anthropic_admin_key", "Anthropic", rf"sk-ant-admin01-{_U}+", "sk-ant-admin01-{u93}AA", (40, 200)),
    T("anthropic_api_key", "Anthropic", rf"sk-ant-(?:api|oat|ort|sid)[0-9][0-9]-{_U}+", "sk-ant-api03-{u93}AA", (40, 200)),
    T("openai_api_key", "OpenAI", rf"sk-(?:(?:proj|svcacct|admin|None)-{_U}+|{_A}+T3BlbkFJ{_A}+)", "sk-proj-{u58}T3BlbkFJ{u58}", (40, 400), glued=False),
    T("openai_legacy_key", "OpenAI / Stability / DeepSeek (sk- and 32 to 48 characters)", r"sk-[A-Za-z0-9]+", "sk-{a48}", (35, 51), glued=False, entropy=3.5),
    T("openrouter_api_key", "OpenRouter", rf"sk-or-v1-{_H}+", "sk-or-v1-{h64}", (73, 73)),
    T("groq_api_key", "Groq", r"gsk_[A-Za-z0-9]+", "gsk_{a52}", (56, 56)),
    T("perplexity_api_key", "Perplexity", r"pplx-[A-Za-z0-9]+", "pplx-{a48}", (50, 60)),
    T("xai_api_key", "xAI", r"xai-[A-Za-z0-9]+", "xai-{a80}", (70, 90)),
    T("replicate_api_token", "Replicate", r"r8_[A-Za-z0-9]+", "r8_{a37}", (40, 40), glued=False),
    T("huggingface_token", "Hugging Face", r"(?:hf|api_org)_[A-Za-z0-9]+", "hf_{L34}", (33, 48), glued=False),
    T("langsmith_api_key", "LangChain LangSmith", rf"lsv2_(?:pt|sk)_{_H}+_{_H}+", "lsv2_pt_{h32}_{h10}", (50, 52)),
    T("pinecone_api_key", "Pinecone", rf"pcsk_{_A}+_{_A}+", "pcsk_{a5}_{a63}", (60, 90)),
    T("elevenlabs_api_key", "ElevenLabs", rf"sk_{_H}+", "sk_{h48}", (51, 51), glued=False),
    # Code hosts and CI
    T("github_token", "GitHub", r"gh[pousr]_[A-Za-z0-9]+", "ghp_{a36}", (34, 1024)),
    T("github_fine_grained_pat", "GitHub", r"github_pat_[A-Za-z0-9_]+", "github_pat_11{U20}_{a59}", (40, 1024)),
    T("gitlab_pat", "GitLab", rf"gl(?:pat|ptt|dt|cbt|oas|imt|ft|soat|agent)-{_U}+", "glpat-{u20}", (24, 1024)),
    T("gitlab_runner_token", "GitLab", rf"(?:glrt-|glrtr-|GR1348941){_U}+", "glrt-{u20}", (24, 1024)),
    T("gitlab_feature_flag_token", "GitLab", rf"glffct-{_U}+", "glffct-{u20}", (27, 1024)),
    T("bitbucket_app_password", "Atlassian Bitbucket", r"ATBB[A-Za-z0-9_=.\-]+", "ATBB{a32}", (32, 40), glued=False),
    T("atlassian_api_token", "Atlassian", r"ATATT3[A-Za-z0-9_=\-]+", "ATATT3{u186}", (150, 260)),
    T("circleci_token", "CircleCI", rf"CCIPAT_{_A}+_{_H}+", "CCIPAT_{a22}_{h40}", (60, 80)),
    T("buildkite_token", "Buildkite", rf"bkua_{_H}+", "bkua_{h40}", (45, 45)),
    T("docker_hub_token", "Docker Hub", rf"dckr_(?:pat|oat)_{_U}+", "dckr_pat_{u27}", (30, 50)),
    T("sourcegraph_token", "Sourcegraph", rf"sgp_(?:(?:{_HX}+|local)_)?{_HX}+", "sgp_{h16}_{h40}", (44, 80)),
    T("clojars_token", "Clojars", r"CLOJARS_[a-z0-9]+", "CLOJARS_{l60}", (68, 68)),
    T("rubygems_api_key", "RubyGems", rf"rubygems_{_H}+", "rubygems_{h48}", (57, 57)),
    T("npm_token", "npm", r"npm_[A-Za-z0-9]+", "npm_{a36}", (40, 40)),
    T("packagist_token", "Private Packagist", rf"packagist_[ou][ru]t_{_H}+", "packagist_uut_{h68}", (82, 82)),
    T("octopus_deploy_api_key", "Octopus Deploy", r"API-[A-Z0-9]+", "API-{U26}", (30, 36), glued=False),
    T("prefect_api_key", "Prefect", r"pnu_[a-zA-Z0-9]+", "pnu_{a36}", (40, 40)),
    T("pulumi_access_token", "Pulumi", rf"pul-{_H}+", "pul-{h40}", (44, 44), glued=False),
    T("terraform_cloud_token", "HashiCorp Terraform", rf"{_A}+\.atlasv1\.[A-Za-z0-9_=\-]+", "{a14}.atlasv1.{u67}", (70, 100), glued=False),
    T("vault_service_token", "HashiCorp Vault", rf"hvs\.{_U}+", "hvs.{u94}", (90, 400)),
    T("vault_batch_token", "HashiCorp Vault", rf"hvb\.{_U}+", "hvb.{u140}", (138, 400)),
    T("doppler_token", "Doppler", rf"dp\.(?:pt|st|ct|sa|scim|audit)\.{_A}+", "dp.pt.{a43}", (40, 60)),
    T("infracost_api_key", "Infracost", r"ico-[A-Za-z0-9]+", "ico-{a32}", (36, 36), glued=False),
    T("dbt_cloud_token", "dbt Cloud", rf"dbt[uc]_{_U}+", "dbtu_{u40}", (40, 60)),
    T("harness_token", "Harness", rf"(?:pat|sat)\.{_U}+\.{_A}+\.{_A}+", "pat.{u22}.{a24}.{a20}", (60, 80), glued=False),
    T("settlemint_token", "SettleMint", rf"sm_(?:pat|aat|sat)_{_A}+", "sm_pat_{a16}", (23, 23)),
    T("readme_api_key", "ReadMe", r"rdme_[a-z0-9]+", "rdme_{l70}", (75, 75)),
    # Clouds and hosting
    T("aws_bedrock_api_key", "AWS Bedrock", r"(?:ABSK(?:[A-Za-z0-9+=]|\\*/)+|bedrock-api-key-(?:[A-Za-z0-9+=_\-]|\\*/)+)", "ABSK{b128}", (60, 400), glued=False),
    T("azure_ad_client_secret", "Microsoft Entra ID", r"[A-Za-z0-9_~.]+Q~[A-Za-z0-9_~.\-]+", "{a3}8Q~{u34}", (37, 40), glued=False, shape=r"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}"),
    T("google_api_key", "Google", rf"AIza{_U}+", "AIza{u35}", (39, 39), glued=False),
    T("google_oauth_client_secret", "Google", rf"GOCSPX-{_U}+", "GOCSPX-{u28}", (35, 35)),
    T("google_oauth_access_token", "Google", rf"ya29\.{_U}+", "ya29.{u120}", (30, 2048), glued=False),
    T("digitalocean_token", "DigitalOcean", rf"do[por]_v1_{_H}+", "dop_v1_{h64}", (71, 71)),
    T("alibaba_access_key_id", "Alibaba Cloud", r"LTAI[A-Za-z0-9]+", "LTAI{a20}", (24, 30), glued=False),
    T("tencent_secret_id", "Tencent Cloud", r"AKID[A-Za-z0-9]+", "AKID{a32}", (36, 36), glued=False),
    T("scaleway_access_key", "Scaleway", r"SCW[A-Z0-9]+", "SCW{U17}", (20, 20), glued=False, entropy=2.5),
    T("heroku_api_key_v2", "Heroku", rf"HRKU-AA{_U}+", "HRKU-AA{u58}", (65, 65)),
    T("flyio_token", "Fly.io", r"(?:fo1_[A-Za-z0-9_\-]+|fm[12][ar]?_(?:[A-Za-z0-9+=]|\\*/)+)", "fm2_{b120}", (40, 2000)),
    T("cloudflare_origin_ca_key", "Cloudflare", rf"v1\.0-{_H}+-{_H}+", "v1.0-{h24}-{h146}", (170, 180), glued=False),
    T("databricks_token", "Databricks", rf"dapi{_H}+(?:-[0-9])?", "dapi{h32}", (36, 38), glued=False),
    T("dynatrace_api_token", "Dynatrace", rf"dt0c01\.{_A}+\.{_A}+", "dt0c01.{U24}.{a64}", (96, 96)),
    T("netlify_token", "Netlify", r"nfp_[A-Za-z0-9]+", "nfp_{a36}", (40, 40)),
    T("render_api_key", "Render", r"rnd_[A-Za-z0-9]+", "rnd_{a32}", (36, 36), glued=False),
    T("supabase_token", "Supabase", rf"(?:sbp_{_H}+|sb_secret_{_U}+)", "sbp_{h40}", (30, 60)),
    T("planetscale_token", "PlanetScale", r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.\-]+", "pscale_tkn_{u43}", (40, 80)),
    T("openshift_token", "Red Hat OpenShift", rf"sha256~{_U}+", "sha256~{u43}", (50, 50)),
    T("scalingo_token", "Scalingo", rf"tk-us-{_U}+", "tk-us-{u48}", (54, 54)),
    T("tailscale_key", "Tailscale", rf"tskey-(?:api|auth|client|scim|webhook)-{_A}+-{_A}+", "tskey-auth-{a12}CNTRL-{a33}", (40, 90)),
    T("portainer_token", "Portainer", r"ptr_(?:[A-Za-z0-9+=]|\\*/)+", "ptr_{a43}=", (44, 200)),
    T("age_secret_key", "age", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]+", "AGE-SECRET-KEY-1{C58}", (74, 74)),
    T("onepassword_service_token", "1Password", r"ops_eyJ(?:[A-Za-z0-9+=_\-]|\\*/)+", "ops_eyJ{b300}", (200, 2000)),
    T("onepassword_secret_key", "1Password", r"A3-[A-Z0-9\-]+", "A3-{U6}-{U11}-{U5}-{U5}-{U5}", (33, 40), glued=False),
    T("jumpcloud_api_key", "JumpCloud", r"jca_[A-Za-z0-9]+", "jca_{a36}", (40, 40)),
    T("clickhouse_cloud_key", "ClickHouse Cloud", r"4b1d[A-Za-z0-9]+", "4b1d{a38}", (42, 42), glued=False),
    T("artifactory_api_key", "JFrog Artifactory", r"AKCp[A-Za-z0-9]+", "AKCp{a69}", (70, 76), glued=False),
    T("artifactory_reference_token", "JFrog Artifactory", r"cmVmdGtu[A-Za-z0-9]+", "cmVmdGtu{a56}", (64, 64), glued=False),
    # Chat, mail, messaging
    T("slack_token", "Slack", r"xox[abposer]-[A-Za-z0-9\-]+", "xoxb-{d12}-{d12}-{a24}", (20, 1024)),
    T("slack_app_token", "Slack", r"xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+", "xapp-1-A{U10}-{d13}-{h64}", (40, 200)),
    T("slack_config_token", "Slack", r"xoxe(?:\.xox[bp])?-[0-9]-[A-Za-z0-9]+", "xoxe.xoxp-1-{a140}", (40, 400)),
    T("discord_webhook", "Discord", rf"https?:{ESC_SLASH}{ESC_SLASH}(?:ptb\.|canary\.)?discord(?:app)?\.com{ESC_SLASH}api{ESC_SLASH}webhooks{ESC_SLASH}[0-9]+{ESC_SLASH}{_U}+", "https://discord.com/api/webhooks/{d18}/{u68}", (80, 300)),
    T("discord_bot_token", "Discord", rf"[MNO]{_U}+\.{_U}+\.{_U}+", "M{u25}.{u6}.{u38}", (59, 80), glued=False, entropy=3.5),
    T("teams_webhook", "Microsoft Teams", rf"https?:{ESC_SLASH}{ESC_SLASH}[a-z0-9\-]+\.webhook\.office\.com{ESC_SLASH}webhookb2{ESC_SLASH}[a-f0-9\-]+@[a-f0-9\-]+{ESC_SLASH}IncomingWebhook{ESC_SLASH}{_H}+{ESC_SLASH}[a-f0-9\-]+", "https://corp.webhook.office.com/webhookb2/"         + _S_UUID         + "@"         + _S_UUID         + "/IncomingWebhook/{h32}/"         + _S_UUID, (150, 260)),
    T("zapier_webhook", "Zapier", rf"https?:{ESC_SLASH}{ESC_SLASH}hooks\.zapier\.com{ESC_SLASH}hooks{ESC_SLASH}catch{ESC_SLASH}[0-9]+{ESC_SLASH}[a-z0-9]+", "https://hooks.zapier.com/hooks/catch/{d7}/{l7}", (48, 90)),
    T("telegram_bot_token", "Telegram", rf"[0-9]+:AA{_U}+", "{d10}:AA{u33}", (43, 48), glued=False, shape=r"[0-9]{8,10}:AA[A-Za-z0-9_\-]{33}"),
    T("sendgrid_api_key", "Twilio SendGrid", rf"SG\.{_U}+\.{_U}+", "SG.{u22}.{u43}", (50, 100)),
    T("twilio", "Twilio", r"SK[0-9a-fA-F]+", "SK{h32}", (34, 34), glued=False),
    T("telnyx_api_key", "Telnyx", r"KEY[0-9A-F]+_[A-Za-z0-9]+", "KEY{H32}_{a22}", (58, 58), glued=False),
    T("mailgun_api_key", "Mailgun", rf"(?:pub)?key-{_H}+", "key-{h32}", (36, 39), glued=False),
    T("mailchimp_api_key", "Mailchimp", rf"{_H}+-us[0-9]+", "{h32}-us{d2}", (36, 37), glued=False, shape=r"[a-f0-9]{32}-us[0-9]{1,2}"),
    T("mandrill_api_key", "Mailchimp Mandrill", rf"md-{_U}+", "md-{u22}", (25, 25), glued=False),
    T("brevo_api_key", "Brevo (Sendinblue)", rf"xkeysib-{_H}+-{_A}+", "xkeysib-{h64}-{a16}", (89, 89)),
    T("resend_api_key", "Resend", rf"re_{_A}+_{_A}+", "re_{a8}_{a24}", (36, 36), glued=False),
    T("firebase_cloud_messaging_key", "Google Firebase", rf"AAAA{_U}+:APA91b{_U}+", "AAAA{u7}:APA91b{u134}", (140, 200), glued=False),
    # Payments and commerce
    T("stripe_key", "Stripe", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9]+", "sk_live_{a99}", (24, 1024)),
    T("shopify_token", "Shopify", rf"shp(?:at|ca|pa|ss)_{_HX}+", "shpat_{h32}", (38, 38)),
    T("square_token", "Square", rf"(?:EAAA{_U}+|sq0(?:atp|csp)-{_U}+)", "EAAA{u60}", (29, 70), glued=False),
    T("paypal_braintree_token", "PayPal Braintree", rf"access_token\$production\${_A}+\${_H}+", "access_token$production${l16}${h32}", (73, 73)),
    T("flutterwave_key", "Flutterwave", rf"FLW(?:PUBK|SECK)_TEST-?{_H}+(?:-X)?", "FLWSECK_TEST-{h32}-X", (30, 50)),
    T("duffel_token", "Duffel", r"duffel_(?:test|live)_[A-Za-z0-9_=\-]+", "duffel_live_{u43}", (50, 60)),
    T("easypost_api_key", "EasyPost", r"EZ[AT]K[A-Za-z0-9]+", "EZAK{a54}", (58, 58), glued=False),
    T("shippo_api_token", "Shippo", rf"shippo_(?:live|test)_{_H}+", "shippo_live_{h40}", (52, 52)),
    T("razorpay_key", "Razorpay", r"rzp_(?:live|test)_[A-Za-z0-9]+", "rzp_live_{a14}", (23, 23)),
    T("adyen_api_key", "Adyen", rf"AQE{_U}+", "AQE{u100}", (60, 250), glued=False, entropy=3.5),
    # Monitoring, analytics, product tools
    T("grafana_api_key", "Grafana", r"eyJrIjoi(?:[A-Za-z0-9+=]|\\*/)+", "eyJrIjoi{b70}", (70, 400)),
    T("grafana_cloud_token", "Grafana", r"glc_(?:[A-Za-z0-9+]|\\*/)+={0,2}", "glc_{b120}==", (36, 400)),
    T("grafana_service_account_token", "Grafana", rf"glsa_{_A}+_{_HX}+", "glsa_{a32}_{h8}", (46, 46)),
    T("new_relic_key", "New Relic", r"(?:NRAK|NRII|NRJS|NRAA)-[A-Za-z0-9\-]+", "NRAK-{U27}", (23, 45)),
    T("sentry_token", "Sentry", rf"(?:sntrys_eyJ(?:[A-Za-z0-9+=_]|\\*/)+|sntryu_{_H}+)", "sntryu_{h64}", (71, 400)),
    T("postman_api_key", "Postman", rf"PMAK-{_H}+-{_H}+", "PMAK-{h24}-{h34}", (64, 64)),
    T("linear_api_key", "Linear", r"lin_api_[A-Za-z0-9]+", "lin_api_{a40}", (48, 48)),
    T("notion_token", "Notion", r"ntn_[0-9]{11}[A-Za-z0-9]+", "ntn_{d11}{a35}", (50, 50)),
    T("airtable_pat", "Airtable", rf"pat{_A}+\.{_H}+", "pat{a14}.{h64}", (82, 82), glued=False),
    T("clickup_token", "ClickUp", r"pk_[0-9]+_[A-Z0-9]+", "pk_{d8}_{U32}", (40, 50), glued=False),
    T("asana_pat", "Asana", rf"[0-9]/[0-9]+:{_H}+", "1/{d16}:{h32}", (51, 51), glued=False, shape=r"[0-9]/[0-9]{16}:[a-f0-9]{32}"),
    T("typeform_token", "Typeform", r"tfp_[A-Za-z0-9_.=\-]+", "tfp_{u59}", (63, 63)),
    T("contentful_token", "Contentful", rf"CFPAT-{_U}+", "CFPAT-{u43}", (49, 49)),
    T("mapbox_token", "Mapbox", rf"sk\.eyJ{_U}+\.{_U}+", "sk.eyJ{u60}.{u22}", (80, 120)),
    T("frameio_token", "Frame.io", r"fio-u-[A-Za-z0-9_=\-]+", "fio-u-{u64}", (70, 70)),
    T("hubspot_private_app_token", "HubSpot", rf"pat-(?:na|eu)[0-9]-{_UUID}", "pat-na1-" + _S_UUID, (44, 44)),
    T("plaid_access_token", "Plaid", rf"access-(?:sandbox|development|production)-{_UUID}", "access-production-" + _S_UUID, (40, 60)),
    T("intra42_secret", "42 Intra", rf"s-s4t2(?:ud|af)-{_H}+", "s-s4t2ud-{h64}", (73, 73)),
    T("apify_token", "Apify", r"apify_api_[A-Za-z0-9]+", "apify_api_{a36}", (46, 46)),
    T("nightfall_api_key", "Nightfall", r"NF-[A-Za-z0-9]+", "NF-{a32}", (35, 35), glued=False),
    T("maxmind_license_key", "MaxMind", rf"{_A}+_{_A}+_mmk", "{a6}_{a29}_mmk", (40, 40), glued=False, shape=r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk"),
    T("salesforce_access_token", "Salesforce", r"00D[A-Za-z0-9]+![A-Za-z0-9._]+", "00D{a15}!{a96}", (90, 140), glued=False),
    T("figma_token", "Figma", rf"figd_{_U}+", "figd_{u40}", (45, 50)),
    T("defined_networking_key", "Defined Networking", r"dnkey-[A-Za-z0-9_=\-]+-[A-Za-z0-9_=\-]+", "dnkey-{u26}-{u52}", (85, 85)),
    T("authress_key", "Authress", r"(?:sc|ext|scauth|authress)_[a-z0-9]+\.[a-z0-9]+\.acc[_\-][a-z0-9\-]+\.(?:[A-Za-z0-9+_=\-]|\\*/)+", "sc_{l20}.{l5}.acc_{l20}.{u60}", (60, 200), glued=False),
    T("adobe_client_secret", "Adobe", r"p8e-[A-Za-z0-9]+", "p8e-{a32}", (36, 36), glued=False),
    T("aws_mws_key", "Amazon MWS", rf"amzn\.mws\.{_UUID}", "amzn.mws." + _S_UUID, (45, 45)),
    T("twitter_bearer_token", "X (Twitter)", r"AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]+", "AAAAAAAAAAAAAAAAAAAAA{a90}", (100, 140), glued=False),
    T("facebook_access_token", "Meta (Facebook)", r"EAA[MC][A-Za-z0-9]+", "EAAC{a120}", (90, 400), glued=False),
    T("yandex_token", "Yandex Cloud", rf"(?:AQVN{_U}+|t1\.[A-Za-z0-9_\-]+=*\.[A-Za-z0-9_\-]+=*)", "AQVN{u36}", (38, 200), glued=False, entropy=3.5),
)
# fmt: on
"""Formats with a prefix: found bare, in any context."""

_HEX = "[a-fA-F0-9]"
_ALNUM = "[A-Za-z0-9]"
_URLSAFE = "[A-Za-z0-9_\\-]"
_B64V = rf"(?:[A-Za-z0-9+=]|{ESC_SLASH})"

# fmt: off
NAMED: tuple[Rule, ...] = (
    N("datadog_api_key", "Datadog", "datadog|dd[_\\-.]?api|dd[_\\-.]?app", _HEX, r"[a-fA-F0-9]{32}|[a-fA-F0-9]{40}", "DATADOG_API_KEY", "{h32}"),
    N("heroku_api_key", "Heroku", "heroku", "[a-fA-F0-9\\-]", _UUID, "HEROKU_API_KEY", _S_UUID),
    N("cloudflare_api_key", "Cloudflare", "cloudflare|cf[_\\-.]?api", _URLSAFE, r"[a-f0-9]{37}|[A-Za-z0-9_\-]{40}", "CLOUDFLARE_API_TOKEN", "{u40}"),
    N("fastly_api_token", "Fastly", "fastly", _URLSAFE, r"[A-Za-z0-9_\-]{32}", "FASTLY_API_TOKEN", "{u32}"),
    N("algolia_api_key", "Algolia", "algolia", _HEX, r"[a-f0-9]{32}", "ALGOLIA_API_KEY", "{h32}"),
    N("cohere_api_key", "Cohere", "cohere|co[_\\-]api", _ALNUM, r"[A-Za-z0-9]{40}", "COHERE_API_KEY", "{a40}"),
    N("mistral_api_key", "Mistral AI", "mistral", _ALNUM, r"[A-Za-z0-9]{32}", "MISTRAL_API_KEY", "{a32}"),
    N("together_api_key", "Together AI", "together", _HEX, r"[a-f0-9]{64}", "TOGETHER_API_KEY", "{h64}"),
    N("azure_openai_key", "Microsoft Azure OpenAI", "azure[_\\-.]?openai|aoai", _HEX, r"[a-fA-F0-9]{32}", "AZURE_OPENAI_API_KEY", "{h32}"),
    N("azure_devops_pat", "Microsoft Azure DevOps", "azure[_\\-.]?devops|ado[_\\-.]?pat|azdo", "[a-z0-9]", r"[a-z2-7]{52}", "AZURE_DEVOPS_PAT", "{c52}"),
    N("bitbucket_client_secret", "Atlassian Bitbucket", "bitbucket", _URLSAFE, r"[A-Za-z0-9_\-]{32,64}", "BITBUCKET_CLIENT_SECRET", "{u32}"),
    N("confluent_secret", "Confluent", "confluent", _URLSAFE, r"[A-Za-z0-9_\-]{16}|[A-Za-z0-9+/]{64}", "CONFLUENT_SECRET_KEY", "{a64}"),
    N("codecov_token", "Codecov", "codecov", "[a-fA-F0-9\\-]", _UUID + r"|[a-f0-9]{32}", "CODECOV_TOKEN", _S_UUID),
    N("coinbase_token", "Coinbase", "coinbase", _URLSAFE, r"[A-Za-z0-9_\-]{64}", "COINBASE_ACCESS_TOKEN", "{u64}"),
    N("discord_client_secret", "Discord", "discord", _URLSAFE, r"[A-Za-z0-9_\-]{32}|[a-f0-9]{64}", "DISCORD_CLIENT_SECRET", "{u32}"),
    N("droneci_token", "Drone CI", "drone", _ALNUM, r"[A-Za-z0-9]{32}", "DRONE_TOKEN", "{a32}"),
    N("dropbox_token", "Dropbox", "dropbox", "[A-Za-z0-9_=.\\-]", r"sl\.[A-Za-z0-9_=\-]{130,160}|[A-Za-z0-9]{11}AAAAAAAAAA[A-Za-z0-9_=\-]{43}|[a-z0-9]{15}", "DROPBOX_ACCESS_TOKEN", "sl.{u135}"),
    N("etsy_api_key", "Etsy", "etsy", _ALNUM, r"[a-z0-9]{24}", "ETSY_API_KEY", "{l24}"),
    N("facebook_app_secret", "Meta (Facebook)", "facebook|fb[_\\-.]?app", _HEX, r"[a-f0-9]{32}", "FACEBOOK_APP_SECRET", "{h32}"),
    N("finicity_secret", "Finicity", "finicity", _ALNUM, r"[A-Za-z0-9]{20}|[a-f0-9]{32}", "FINICITY_CLIENT_SECRET", "{a20}"),
    N("finnhub_token", "Finnhub", "finnhub", _ALNUM, r"[a-z0-9]{20}", "FINNHUB_TOKEN", "{l20}"),
    N("flickr_api_key", "Flickr", "flickr", _HEX, r"[a-f0-9]{32}", "FLICKR_API_KEY", "{h32}"),
    N("freshbooks_token", "FreshBooks", "freshbooks", _HEX, r"[a-f0-9]{64}", "FRESHBOOKS_TOKEN", "{h64}"),
    N("gitter_token", "Gitter", "gitter", _URLSAFE, r"[A-Za-z0-9_\-]{40}", "GITTER_TOKEN", "{u40}"),
    N("gocardless_token", "GoCardless", "gocardless", _URLSAFE, r"live_[A-Za-z0-9_=\-]{40}", "GOCARDLESS_ACCESS_TOKEN", "live_{u40}"),
    N("hubspot_api_key", "HubSpot", "hubspot", "[a-fA-F0-9\\-]", _UUID, "HUBSPOT_API_KEY", _S_UUID),
    N("intercom_token", "Intercom", "intercom", _B64V, r"[A-Za-z0-9+/=_\-]{60}", "INTERCOM_ACCESS_TOKEN", "{a60}"),
    N("kraken_token", "Kraken", "kraken", _B64V, r"[A-Za-z0-9+/=\-]{80,90}", "KRAKEN_API_SECRET", "{a86}=="),
    N("kucoin_token", "KuCoin", "kucoin", "[a-fA-F0-9\\-]", r"[a-f0-9]{24}|" + _UUID, "KUCOIN_API_SECRET", _S_UUID),
    N("launchdarkly_token", "LaunchDarkly", "launchdarkly|launch[_\\-]darkly", "[A-Za-z0-9\\-]", r"(?:api|sdk|mob)-" + _UUID, "LAUNCHDARKLY_ACCESS_TOKEN", "api-" + _S_UUID),
    N("linkedin_client_secret", "LinkedIn", "linkedin|linked[_\\-]in", _ALNUM, r"[A-Za-z0-9]{16}", "LINKEDIN_CLIENT_SECRET", "{a16}"),
    N("lob_api_key", "Lob", "lob", "[a-z0-9_]", r"(?:live|test)_(?:pub_)?[a-f0-9]{31,35}", "LOB_API_KEY", "live_{h35}"),
    N("mattermost_token", "Mattermost", "mattermost", _ALNUM, r"[a-z0-9]{26}", "MATTERMOST_ACCESS_TOKEN", "{l26}"),
    N("messagebird_token", "MessageBird", "messagebird|message[_\\-]bird", _ALNUM, r"[A-Za-z0-9]{25}", "MESSAGEBIRD_API_KEY", "{a25}"),
    N("netlify_access_token", "Netlify", "netlify", _URLSAFE, r"[A-Za-z0-9_\-]{40,46}", "NETLIFY_AUTH_TOKEN", "{u43}"),
    N("nytimes_token", "The New York Times", "nytimes|new[_\\-]york[_\\-]times", _URLSAFE, r"[A-Za-z0-9_\-]{32}", "NYTIMES_API_KEY", "{u32}"),
    N("okta_token", "Okta", "okta", _URLSAFE, r"00[A-Za-z0-9_\-]{40}", "OKTA_API_TOKEN", "00{u40}"),
    N("auth0_client_secret", "Auth0", "auth0", _URLSAFE, r"[A-Za-z0-9_\-]{64}", "AUTH0_CLIENT_SECRET", "{u64}"),
    N("plaid_secret", "Plaid", "plaid", _HEX, r"[a-f0-9]{30}", "PLAID_SECRET", "{h30}"),
    N("rapidapi_key", "RapidAPI", "rapidapi|rapid[_\\-]api", _URLSAFE, r"[A-Za-z0-9_\-]{50}", "RAPIDAPI_KEY", "{u50}"),
    N("sendbird_token", "Sendbird", "sendbird", _HEX, r"[a-f0-9]{40}", "SENDBIRD_API_TOKEN", "{h40}"),
    N("sentry_auth_token", "Sentry", "sentry", _HEX, r"[a-f0-9]{64}", "SENTRY_AUTH_TOKEN", "{h64}"),
    N("snyk_token", "Snyk", "snyk", "[a-fA-F0-9\\-]", _UUID, "SNYK_TOKEN", _S_UUID),
    N("sonar_token", "SonarQube / SonarCloud", "sonar", "[A-Za-z0-9_]", r"(?:squ_|sqp_|sqa_)?[a-f0-9]{40}", "SONAR_TOKEN", "squ_{h40}"),
    N("squarespace_token", "Squarespace", "squarespace", "[a-fA-F0-9\\-]", _UUID, "SQUARESPACE_API_KEY", _S_UUID),
    N("sumologic_key", "Sumo Logic", "sumo", _ALNUM, r"su[A-Za-z0-9]{12}|[A-Za-z0-9]{64}", "SUMO_ACCESS_KEY", "{a64}"),
    N("travisci_token", "Travis CI", "travis", _URLSAFE, r"[A-Za-z0-9_\-]{22}", "TRAVIS_API_TOKEN", "{u22}"),
    N("twilio_auth_token", "Twilio", "twilio", _HEX, r"[a-f0-9]{32}", "TWILIO_AUTH_TOKEN", "{h32}"),
    N("twitch_token", "Twitch", "twitch", _ALNUM, r"[a-z0-9]{30}", "TWITCH_API_TOKEN", "{l30}"),
    N("twitter_secret", "X (Twitter)", "twitter", "[A-Za-z0-9\\-]", r"[A-Za-z0-9]{25}|[A-Za-z0-9]{45,50}|[0-9]{15,25}-[A-Za-z0-9]{20,40}", "TWITTER_API_SECRET", "{a50}"),
    N("zendesk_token", "Zendesk", "zendesk", _ALNUM, r"[A-Za-z0-9]{40}", "ZENDESK_API_TOKEN", "{a40}"),
    N("linode_token", "Akamai Linode", "linode", _HEX, r"[a-f0-9]{64}", "LINODE_TOKEN", "{h64}"),
    N("vultr_api_key", "Vultr", "vultr", _ALNUM, r"[A-Z0-9]{36}", "VULTR_API_KEY", "{U36}"),
    N("hetzner_token", "Hetzner", "hetzner|hcloud", _ALNUM, r"[A-Za-z0-9]{64}", "HCLOUD_TOKEN", "{a64}"),
    N("ibm_cloud_api_key", "IBM Cloud", "ibm", _URLSAFE, r"[A-Za-z0-9_\-]{44}", "IBMCLOUD_API_KEY", "{u44}"),
    N("pagerduty_token", "PagerDuty", "pagerduty|pager[_\\-]duty", "[A-Za-z0-9_+\\-]", r"[A-Za-z0-9_+\-]{20}", "PAGERDUTY_TOKEN", "u+{u18}"),
    N("opsgenie_api_key", "Atlassian Opsgenie", "opsgenie", "[a-fA-F0-9\\-]", _UUID, "OPSGENIE_API_KEY", _S_UUID),
    N("honeycomb_api_key", "Honeycomb", "honeycomb", _ALNUM, r"[A-Za-z0-9]{22}|[a-f0-9]{32}", "HONEYCOMB_API_KEY", "{a22}"),
    N("rollbar_token", "Rollbar", "rollbar", _HEX, r"[a-f0-9]{32}", "ROLLBAR_ACCESS_TOKEN", "{h32}"),
    N("bugsnag_api_key", "Bugsnag", "bugsnag", _HEX, r"[a-f0-9]{32}", "BUGSNAG_API_KEY", "{h32}"),
    N("segment_write_key", "Twilio Segment", "segment", _ALNUM, r"[A-Za-z0-9]{32}", "SEGMENT_WRITE_KEY", "{a32}"),
    N("mixpanel_secret", "Mixpanel", "mixpanel", _HEX, r"[a-f0-9]{32}", "MIXPANEL_API_SECRET", "{h32}"),
    N("pusher_secret", "Pusher", "pusher", _HEX, r"[a-f0-9]{20}", "PUSHER_APP_SECRET", "{h20}"),
    N("ably_api_key", "Ably", "ably", "[A-Za-z0-9_.:\\-]", r"[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{6}:[A-Za-z0-9_\-]{43}", "ABLY_API_KEY", "{u6}.{u6}:{u43}"),
    N("vonage_api_secret", "Vonage (Nexmo)", "vonage|nexmo", _ALNUM, r"[A-Za-z0-9]{16}", "VONAGE_API_SECRET", "{a16}"),
    N("plivo_auth_token", "Plivo", "plivo", _ALNUM, r"[A-Za-z0-9]{40}", "PLIVO_AUTH_TOKEN", "{a40}"),
    N("postmark_token", "Postmark", "postmark", "[a-fA-F0-9\\-]", _UUID, "POSTMARK_SERVER_TOKEN", _S_UUID),
    N("sparkpost_api_key", "SparkPost", "sparkpost", _HEX, r"[a-f0-9]{40}", "SPARKPOST_API_KEY", "{h40}"),
    N("mailjet_secret", "Mailjet", "mailjet", _HEX, r"[a-f0-9]{32}", "MAILJET_SECRET_KEY", "{h32}"),
    N("shodan_api_key", "Shodan", "shodan", _ALNUM, r"[A-Za-z0-9]{32}", "SHODAN_API_KEY", "{a32}"),
    N("virustotal_api_key", "VirusTotal", "virustotal|vt[_\\-]api", _HEX, r"[a-f0-9]{64}", "VIRUSTOTAL_API_KEY", "{h64}"),
    N("spotify_client_secret", "Spotify", "spotify", _HEX, r"[a-f0-9]{32}", "SPOTIFY_CLIENT_SECRET", "{h32}"),
    N("trello_token", "Trello", "trello", _ALNUM, r"[a-f0-9]{32}|[A-Za-z0-9]{64}|ATTA[A-Za-z0-9]{60,70}", "TRELLO_TOKEN", "{h32}"),
    N("github_oauth_secret", "GitHub", "github", _HEX, r"[a-f0-9]{40}", "GITHUB_CLIENT_SECRET", "{h40}"),
    N("vercel_token", "Vercel", "vercel", _ALNUM, r"[A-Za-z0-9]{24}", "VERCEL_TOKEN", "{a24}"),
    N("railway_token", "Railway", "railway", "[a-fA-F0-9\\-]", _UUID, "RAILWAY_TOKEN", _S_UUID),
    N("consul_token", "HashiCorp Consul / Nomad", "consul|nomad", "[a-fA-F0-9\\-]", _UUID, "CONSUL_HTTP_TOKEN", _S_UUID),
    N("vault_legacy_token", "HashiCorp Vault", "vault", "[A-Za-z0-9.]", r"s\.[A-Za-z0-9]{24}", "VAULT_TOKEN", "s.{a24}"),
    N("aws_session_token", "Amazon Web Services", "aws[_\\-.]?session", _B64V, r"[A-Za-z0-9+/=]{100,2000}", "AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2Vj{b300}"),
    N("kubernetes_bootstrap_token", "Kubernetes", "bootstrap|kubeadm", "[a-z0-9.]", r"[a-z0-9]{6}\.[a-z0-9]{16}", "KUBEADM_BOOTSTRAP_TOKEN", "{l6}.{l16}"),
    N("ngrok_authtoken", "ngrok", "ngrok", "[A-Za-z0-9_]", r"[0-9A-Za-z]{27}_[0-9A-Za-z]{21}", "NGROK_AUTHTOKEN", "2{a26}_{a21}"),
    N("gitlab_session_cookie", "GitLab", "_?gitlab[_\\-]session", _HEX, r"[a-f0-9]{32}", "_gitlab_session", "{h32}"),
    N("sidekiq_secret", "Sidekiq", "contribsys|sidekiq", "[a-fA-F0-9:]", r"[a-f0-9]{8}:[a-f0-9]{8}", "BUNDLE_ENTERPRISE__CONTRIBSYS__COM", "{h8}:{h8}"),
    N("meraki_api_key", "Cisco Meraki", "meraki", _HEX, r"[a-f0-9]{40}", "MERAKI_API_KEY", "{h40}"),
    N("looker_client_secret", "Looker", "looker", _ALNUM, r"[A-Za-z0-9]{24}", "LOOKERSDK_CLIENT_SECRET", "{a24}"),
    N("storyblok_token", "Storyblok", "storyblok", _ALNUM, r"[A-Za-z0-9]{22}tt", "STORYBLOK_TOKEN", "{a22}tt"),
    N("zoom_secret", "Zoom", "zoom", _ALNUM, r"[A-Za-z0-9]{32}", "ZOOM_CLIENT_SECRET", "{a32}"),
    N("instagram_token", "Meta (Instagram)", "instagram", _ALNUM, r"IG[A-Za-z0-9]{100,300}", "INSTAGRAM_ACCESS_TOKEN", "IGQV{a150}"),
    N("pinterest_token", "Pinterest", "pinterest", "[A-Za-z0-9_.\\-]", r"pina_[A-Z0-9]{40,100}", "PINTEREST_ACCESS_TOKEN", "pina_{U96}"),
    N("reddit_secret", "Reddit", "reddit", _URLSAFE, r"[A-Za-z0-9_\-]{27,30}", "REDDIT_CLIENT_SECRET", "{u30}"),
    N("freemius_secret", "Freemius", "freemius|secret_key", _URLSAFE, r"sk_[A-Za-z0-9<>;\[\]{}!.#$%&*+=?^_|~-]{29}", "FREEMIUS_SECRET_KEY", "sk_{a29}"),
    N("privateai_api_key", "Private AI", "private[_\\-]?ai", _ALNUM, r"[a-z0-9]{32}", "PRIVATEAI_API_KEY", "{l32}"),
    N("mollie_api_key", "Mollie", "mollie", "[A-Za-z0-9_]", r"(?:live|test)_[A-Za-z0-9]{30}", "MOLLIE_API_KEY", "live_{a30}"),
    N("beamer_api_token", "Beamer", "beamer", "[A-Za-z0-9_=\\-]", r"b_[A-Za-z0-9=_\-]{44}", "BEAMER_API_KEY", "b_{u44}"),
)
# fmt: on
"""Formats without a prefix: found beside a name holding the vendor's word, in their shape."""

GENERIC: tuple[Rule, ...] = (
    Rule(
        "nuget_config_password",
        rf"(?i:ClearTextPassword|Password){QUOTE}[ \t]+value={QUOTE}(?P<secret>[^\"'\\\r\n<>]+){QUOTE}",
        "password",
        min_length=6,
        max_length=256,
        min_entropy=2.0,
        specific=False,
        vendor="NuGet (nuget.config)",
        sample='<add key="ClearTextPassword" value="{a16}" />',
        counter='<add key="ClearTextPassword" value="$(NUGET_PASSWORD)" />',
    ),
    Rule(
        "db_url_password",
        rf"(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver"
        rf"|oracle|clickhouse|cockroachdb|couchdb|neo4j|nats|kafka|cloudinary):{ESC_SLASH}{ESC_SLASH}"
        rf"{URL_USER}:(?P<secret>{URL_PASS_CHAR}+)@",
        "://",
        specific=False,
        vendor="database connection strings",
        sample="postgres://app:{a18}@db.corp.net:5432/app",
        counter="postgres://postgres:postgres@localhost:5432/postgres",
    ),
    Rule(
        "url_basic_auth",
        rf"(?i:https?|ftp|sftp|git\+https?|ssh|svn|ldaps?|smtps?|imaps?):{ESC_SLASH}{ESC_SLASH}"
        rf"{URL_USER}:(?P<secret>{URL_PASS_CHAR}+)@",
        "://",
        specific=False,
        vendor="URLs with credentials",
        sample="https://deploy:{a18}@git.corp.net/repo.git",
        counter="https://user:pass@example.com/",
    ),
    Rule(
        "curl_basic_auth",
        rf"(?:\s-u|--user)[ =]?{QUOTE}?{URL_USER}:(?P<secret>{URL_PASS_CHAR}+){VALUE_END}",
        "-u",
        min_length=6,
        max_length=256,
        min_entropy=2.0,
        specific=False,
        vendor="curl -u user:password",
        sample="curl -u deploy:{a18} https://api.corp.net",
        counter="curl -u user:${PASSWORD} https://api.corp.net",
    ),
    Rule(
        "generic_password",
        rf"(?:{_PASSWORD_NAMES}{ASSIGN}|\s-p{QUOTE}|--password[ =]{QUOTE}?)"
        rf"(?P<secret>{VALUE_CHAR}{{6,}}){VALUE_END}",
        "pass",
        min_length=8,
        max_length=256,
        min_entropy=2.5,
        mixed=True,
        specific=False,
        vendor="passwords in assignments",
        sample="DB_PASSWORD={a8}7Q{a8}",
        counter="password: changeme",
        name="DB_PASSWORD",
    ),
    Rule(
        "generic_api_key",
        rf"(?:{_KEY_NAMES}{ASSIGN}"
        rf"|(?i:authorization):[ \t]*(?i:bearer|token|basic)[ \t]+"
        rf"|(?i:x-auth-token|x-api-key|private-token|api-key):[ \t]*"
        rf"|(?i:key|token|secret)(?: is|[A-Za-z ]*:)[ \t]+)"
        rf"(?P<secret>{_GENERIC_VALUE}{{12,}}){VALUE_END}",
        "key",
        min_length=16,
        max_length=512,
        min_entropy=3.0,
        mixed=True,
        specific=False,
        vendor="keys, tokens and secrets in assignments and headers",
        sample="SESSION_SECRET={a16}9{a15}",
        counter='"max_tokens": 123456789012',
        name="SESSION_SECRET",
    ),
)
"""Passwords and keys found by the name beside them, whatever their vendor."""

RULES: tuple[Rule, ...] = HAND[:1] + TOKENS + HAND[1:] + NAMED + GENERIC
"""The built-in table."""

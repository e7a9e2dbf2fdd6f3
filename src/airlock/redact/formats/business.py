"""Prefixed formats of chat, mail, payments, monitoring and product tools.

PURE: no I/O. One row per format: kind, vendor, pattern, sample (a true example's template) and
lengths; ``patterns.token`` and ``patterns.named`` explain the rest. The formats are public facts
(vendors' prefixes, lengths, alphabets); the patterns and examples are our own.
"""

from __future__ import annotations

from airlock.redact.formats.common import HX, S_UUID, UUID, A, H, U
from airlock.redact.patterns import ESC_SLASH, Rule
from airlock.redact.patterns import token as T

# fmt: off
BUSINESS: tuple[Rule, ...] = (
    # Chat, mail, messaging
    T("slack_token", "Slack", r"xox[abposer]-[A-Za-z0-9\-]+", "xoxb-{d12}-{d12}-{a24}", (20, 1024)),
    T("slack_app_token", "Slack", r"xapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+", "xapp-1-A{U10}-{d13}-{h64}", (40, 200)),
    T("slack_config_token", "Slack", r"xoxe(?:\.xox[bp])?-[0-9]-[A-Za-z0-9]+", "xoxe.xoxp-1-{a140}", (40, 400)),
    T("discord_webhook", "Discord", rf"https?:{ESC_SLASH}{ESC_SLASH}(?:ptb\.|canary\.)?discord(?:app)?\.com{ESC_SLASH}api{ESC_SLASH}webhooks{ESC_SLASH}[0-9]+{ESC_SLASH}{U}+", "https://discord.com/api/webhooks/{d18}/{u68}", (80, 300)),
    T("discord_bot_token", "Discord", rf"[MNO]{U}+\.{U}+\.{U}+", "M{u25}.{u6}.{u38}", (59, 80), glued=False, entropy=3.5),
    T("teams_webhook", "Microsoft Teams", rf"https?:{ESC_SLASH}{ESC_SLASH}[a-z0-9\-]+\.webhook\.office\.com{ESC_SLASH}webhookb2{ESC_SLASH}[a-z0-9\-]+@[a-z0-9\-]+{ESC_SLASH}IncomingWebhook{ESC_SLASH}[a-z0-9]+{ESC_SLASH}[a-z0-9\-]+", "https://corp.webhook.office.com/webhookb2/" + S_UUID + "@" + S_UUID + "/IncomingWebhook/{h32}/" + S_UUID, (150, 260)),
    T("zapier_webhook", "Zapier", rf"https?:{ESC_SLASH}{ESC_SLASH}hooks\.zapier\.com{ESC_SLASH}hooks{ESC_SLASH}catch{ESC_SLASH}[0-9]+{ESC_SLASH}[a-z0-9]+", "https://hooks.zapier.com/hooks/catch/{d7}/{l7}", (48, 90)),
    T("telegram_bot_token", "Telegram", rf"[0-9]+:AA{U}+", "{d10}:AA{u33}", (43, 48), glued=False, shape=r"[0-9]{8,10}:AA[A-Za-z0-9_\-]{33}"),
    T("sendgrid_api_key", "Twilio SendGrid", r"SG\.[A-Za-z0-9_\-][A-Za-z0-9=_\-.]+", "SG.{u22}.{u43}", (69, 69)),
    T("twilio", "Twilio", r"SK[0-9a-fA-F]+", "SK{h32}", (34, 34), glued=False),
    T("telnyx_api_key", "Telnyx", r"KEY[0-9A-F]+_[A-Za-z0-9]+", "KEY{H32}_{a22}", (58, 58), glued=False),
    T("mailgun_api_key", "Mailgun", rf"(?:pub)?key-{H}+", "key-{h32}", (36, 39), glued=False),
    T("mailchimp_api_key", "Mailchimp", rf"{H}+-us[0-9]+", "{h32}-us{d2}", (36, 37), glued=False, shape=r"[a-f0-9]{32}-us[0-9]{1,2}"),
    T("mandrill_api_key", "Mailchimp Mandrill", rf"md-{U}+", "md-{u22}", (25, 25), glued=False),
    T("brevo_api_key", "Brevo (Sendinblue)", rf"xkeysib-{H}+-{A}+", "xkeysib-{h64}-{a16}", (89, 89)),
    T("resend_api_key", "Resend", rf"re_{A}+_{A}+", "re_{a8}_{a24}", (36, 36), glued=False),
    T("firebase_cloud_messaging_key", "Google Firebase", rf"AAAA{U}+:APA91b{U}+", "AAAA{u7}:APA91b{u134}", (140, 200), glued=False),
    # Payments and commerce
    T("stripe_key", "Stripe", r"(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]+|whsec_[A-Za-z0-9]+", "sk_live_{a99}", (18, 1024), shape=r"(?:sk|rk)_(?:live|test|prod)_(?![a-z]+$)[A-Za-z0-9]+|whsec_[A-Za-z0-9]+"),
    T("shopify_token", "Shopify", rf"shp(?:at|ca|pa|ss)_{HX}+", "shpat_{h32}", (38, 38)),
    T("square_token", "Square", rf"(?:EAAA{U}+|sq0(?:atp|csp)-{U}+)", "EAAA{u60}", (29, 70), glued=False),
    T("paypal_braintree_token", "PayPal Braintree", rf"access_token\$production\${A}+\${H}+", "access_token$production${l16}${h32}", (73, 73)),
    T("flutterwave_key", "Flutterwave", r"FLW(?:PUBK|SECK)_TEST-?[a-hA-H0-9]+(?:-X)?", "FLWSECK_TEST-{h32}-X", (25, 50)),
    T("duffel_token", "Duffel", r"duffel_(?:test|live)_[A-Za-z0-9_=\-]+", "duffel_live_{u43}", (50, 60)),
    T("easypost_api_key", "EasyPost", r"EZ[AT]K[A-Za-z0-9]+", "EZAK{a54}", (58, 58), glued=False),
    T("shippo_api_token", "Shippo", rf"shippo_(?:live|test)_{HX}+", "shippo_live_{h40}", (52, 52)),
    T("razorpay_key", "Razorpay", r"rzp_(?:live|test)_[A-Za-z0-9]+", "rzp_live_{a14}", (23, 23)),
    T("adyen_api_key", "Adyen", rf"AQE{U}+", "AQE{u100}", (60, 250), glued=False, entropy=3.5),
    # Monitoring, analytics, product tools
    T("grafana_api_key", "Grafana", r"eyJrIjoi(?:[A-Za-z0-9+=]|\\*/)+", "eyJrIjoi{b70}", (70, 400)),
    T("grafana_cloud_token", "Grafana", r"glc_(?:[A-Za-z0-9+]|\\*/)+={0,2}", "glc_{b120}==", (36, 400)),
    T("grafana_service_account_token", "Grafana", rf"glsa_{A}+_{HX}+", "glsa_{a32}_{h8}", (46, 46)),
    T("new_relic_key", "New Relic", r"(?:NRAK|NRII|NRJS|NRAA)-[A-Za-z0-9\-]+", "NRAK-{U27}", (23, 45)),
    T("sentry_token", "Sentry", rf"(?:sntrys_eyJ(?:[A-Za-z0-9+=_]|\\*/)+|sntryu_{H}+)", "sntryu_{h64}", (71, 400)),
    T("postman_api_key", "Postman", rf"PMAK-{H}+-{H}+", "PMAK-{h24}-{h34}", (64, 64)),
    T("linear_api_key", "Linear", r"lin_api_[A-Za-z0-9]+", "lin_api_{a40}", (48, 48)),
    T("notion_token", "Notion", r"ntn_[0-9]{11}[A-Za-z0-9]+", "ntn_{d11}{a35}", (50, 50)),
    T("airtable_pat", "Airtable", rf"pat{A}+\.{H}+", "pat{a14}.{h64}", (82, 82), glued=False),
    T("clickup_token", "ClickUp", r"pk_[0-9]+_[A-Z0-9]+", "pk_{d8}_{U32}", (40, 50), glued=False),
    T("asana_pat", "Asana", rf"[0-9]/[0-9]+:{H}+", "1/{d16}:{h32}", (51, 51), glued=False, shape=r"[0-9]/[0-9]{16}:[a-f0-9]{32}"),
    T("typeform_token", "Typeform", r"tfp_[A-Za-z0-9_.=\-]+", "tfp_{u59}", (63, 63)),
    T("contentful_token", "Contentful", rf"CFPAT-{U}+", "CFPAT-{u43}", (49, 49)),
    T("mapbox_token", "Mapbox", rf"sk\.eyJ{U}+\.{U}+", "sk.eyJ{u60}.{u22}", (80, 120)),
    T("frameio_token", "Frame.io", r"fio-u-[A-Za-z0-9_=\-]+", "fio-u-{u64}", (70, 70)),
    T("hubspot_private_app_token", "HubSpot", rf"pat-(?:na|eu)[0-9]-{UUID}", "pat-na1-" + S_UUID, (44, 44)),
    T("plaid_access_token", "Plaid", rf"access-(?:sandbox|development|production)-{UUID}", "access-production-" + S_UUID, (40, 60)),
    T("intra42_secret", "42 Intra", rf"s-s4t2(?:ud|af)-{H}+", "s-s4t2ud-{h64}", (73, 73)),
    T("apify_token", "Apify", r"apify_api_[A-Za-z0-9]+", "apify_api_{a36}", (46, 46)),
    T("nightfall_api_key", "Nightfall", r"NF-[A-Za-z0-9]+", "NF-{a32}", (35, 35), glued=False),
    T("maxmind_license_key", "MaxMind", rf"{A}+_{A}+_mmk", "{a6}_{a29}_mmk", (40, 40), glued=False, shape=r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk"),
    T("salesforce_access_token", "Salesforce", r"00D[A-Za-z0-9]+![A-Za-z0-9._]+", "00D{a15}!{a96}", (90, 140), glued=False),
    T("figma_token", "Figma", rf"figd_{U}+", "figd_{u40}", (45, 50)),
    T("defined_networking_key", "Defined Networking", r"dnkey-[A-Za-z0-9_=\-]+-[A-Za-z0-9_=\-]+", "dnkey-{u26}-{u52}", (85, 85)),
    T("authress_key", "Authress", r"(?:sc|ext|scauth|authress)_[a-z0-9]+\.[a-z0-9]+\.acc[_\-][a-z0-9\-]+\.(?:[A-Za-z0-9+_=\-]|\\*/)+", "sc_{l20}.{l5}.acc_{l20}.{u60}", (60, 200), glued=False),
    T("adobe_client_secret", "Adobe", r"p8e-[A-Za-z0-9]+", "p8e-{a32}", (36, 36), glued=False),
    T("aws_mws_key", "Amazon MWS", rf"amzn\.mws\.{UUID}", "amzn.mws." + S_UUID, (45, 45)),
    T("twitter_bearer_token", "X (Twitter)", r"AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]+", "AAAAAAAAAAAAAAAAAAAAA{a90}", (100, 140), glued=False),
    T("facebook_access_token", "Meta (Facebook)", r"EAA[MC][A-Za-z0-9]+", "EAAC{a120}", (90, 400), glued=False),
    T("yandex_token", "Yandex Cloud", rf"(?:AQVN{U}+|t1\.[A-Za-z0-9_\-]+=*\.[A-Za-z0-9_\-]+=*)", "AQVN{u36}", (38, 200), glued=False, entropy=3.5),
)
# fmt: on

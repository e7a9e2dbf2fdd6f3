"""Secrets and look-alikes shared by the redaction tests (random bodies; none is live)."""

from __future__ import annotations

# fmt: off
SECRETS: list[tuple[str, str, str]] = [
    # (kind, text around the secret with {} where it goes, the secret)
    ("anthropic_api_key", "key = {}", "sk-ant-api03-" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uV8xA1cD4fG7iL0oR3tU6wX9zB2dE5gH8jK1mN4pQ7sT0vW3yZAA"),
    ("anthropic_admin_key", "ADMIN={}", "sk-ant-admin01-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7Zy6Xw5Vu4Ts3Rq2Po1Nm0Lk9Ji8Hg7Fe6Dc5Ba4Zy3Xw2Vu1Ts0Rq9Po8NmAA"),
    ("openai_api_key", "OPENAI_API_KEY={}", "sk-proj-Q2w3E4r5T6y7U8i9O0p1A2s3D4f5G6h7J8k9L0zXcVbNmT3BlbkFJq1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZ"),
    ("github_token", "token: {}", "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"),
    ("github_fine_grained_pat", "GH_TOKEN={}", "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"),
    ("gitlab_pat", "{}", "glpat-dNyMDRAccqN4TF0hqKKN"),
    ("google_api_key", "key={}", "AIzaLo7qaFzG1qGCFCqHxJHXa_Zv5vAY-tBQolh"),
    ("huggingface_token", "HF={}", "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"),
    ("npm_token", "//registry.npmjs.org/:_authToken={}", "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"),
    ("pypi_token", "password = {}", "pypi-AgEIcHlwaS5vcmc1LktH0xMO32gP_AS00xQeAFSGq75PGVLsiGQCx76oOGlTZJOGb22pWBAIhptaVhFd"),
    ("sendgrid_api_key", "SENDGRID={}", "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"),
    ("slack_token", "Bearer {}", "xoxb-40102029606-20186565520-qXzfCQ5hoPhfgY5EdVqW9h2k"),
    ("slack_webhook", "curl {}", "https://hooks.slack.com/services/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"),
    ("stripe_key", "stripe.api_key = '{}'", "sk_live_wmWS7t9PDaR1jOX5ABah9VFc"),
    ("twilio", "TWILIO_API_KEY={}", "SK10002cf67aa80356baf57e1900533c3d"),
    ("aws_access_key_id", "aws_access_key_id = {}", "AKIAFD4GBQ3YLVNH5MH3"),
    ("aws_secret_access_key", "aws_secret_access_key = {}", "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"),
    ("azure_storage_key", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net", "/ajegUO9GYY8iKQfHW8FF1yq56lXtpDjO18XskoYUyEL6u5SYQKuWIs9V11RdNIOxDblkvSSw+hu4zY7ukQ9Zw=="),
    ("jwt", "Authorization: Bearer {}", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI4NDQ0MTAiLCJpYXQiOjE3NjE1MjQzNTJ9.ufpK1O9EqJgPHP47SwbftsGbvOpRBu16KDGrqvmk5aw"),
    ("db_url_password", "DATABASE_URL=postgres://admin:{}@db.internal:5432/app", "mO3MpTtEG6PCshPNFA"),
    ("url_basic_auth", "git clone https://deploy:{}@git.internal/repo.git", "9~72Yy5LYiEwu"),
    ("generic_password", "DB_PASSWORD='{}'", "UufgJ4UUE8d458y55x"),
    ("generic_api_key", "SESSION_SECRET={}", "8hC91edwPx9gKIcQ1Lz5HfiOAs987Lco"),
    ("private_key_pem", "{}", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPfvFjsHeKVevqNyckis2ipN8PURpeaNGqOTdiJhEz5n7Yxkues3DDO+\nTxCRela+buARyvdQkseSWe8fny+NPL7rBmTxmVYUyPs12L1s8n1RSd+r2a1Dctkp\nwUzmgOZopOPKAhLOIvF9u41eBm/rR4aOvA==\n-----END EC PRIVATE KEY-----\n"),
]
# fmt: on
"""Each kind once, in a typical context."""

# fmt: off
JOINED: list[tuple[str, str, str]] = [
    # (kind, text with {} where the secret goes, the secret): names joined to values as
    # configuration, code and commands write them
    ("generic_password", "<settings>\n  <dbPassword>{}</dbPassword>", "Wq7z!K2pV9xR4m"),
    ("generic_password", "<dbPassword>\n    {}\n</dbPassword>", "Wq7z!K2pV9xR4m"),
    ("generic_api_key", "API_TOKEN ?= {}", "Zk3mQ8vX2pL7wR4tY9bN6cJ1"),
    ("generic_api_key", "api_token: |\n  {}\n", "Zk3mQ8vX2pL7wR4tY9bN6cJ1"),
    ("curl_header_token", "curl --header 'Authorization:  {}'", "7fb4223e-5008-46e5-be67-c7b8f2732305"),
    ("curl_header_token", 'curl -H "Authorization: Api-Token {}"', "33cb987851bc5659l29114c62e60c79abd"),
    ("curl_header_token", 'curl -s -H "Token: {}" http://localhost:8080/api', "7c1e9a04fb28d635"),
    ("curl_header_token", "curl --header 'X-Api-Key: {}' https://api.corp.net", "Qm7vT2kX9p"),
    ("curl_header_token", "curl -H 'Authorization: Bearer {}' https://api.corp.net", "r8Kd2mZq1vX4"),
    ("curl_basic_auth", "curl --user ops@corp.net:{} https://files.corp.net/x", "pT4wZx8Rk2q"),
    ("curl_basic_auth", "curl -u elastic:{} https://localhost:9200", "Vq8#mZt2Lp9w"),
    ("curl_basic_auth", "curl --user bob:'{}' -X PATCH https://x.corp.net", "pRf7vG2h1L8nQkW9"),
    ("db_url_password", "REDIS_URL=redis://:{}@cache.corp.net:6379/0", "Pz8kQ2vW7mX4rT"),
    ("url_basic_auth", "snowflake://appuser:{}@corp-xy12345/db", "Zq8vW3rT6yP2mK"),
    ("url_basic_auth", "rtsp://admin:{}@10.0.0.5:554/stream", "Zq8vW3rT6yP2"),
    ("url_basic_auth", "ldap://cn=admin,dc=corp,dc=net:{}@ldap.corp.net/", "Zq8vW3rT6yP2"),
    ("url_basic_auth", "ldaps://uid=svc-ci,ou=people,dc=x:{}@10.0.0.9:636", "mK4p~Tz9Qw2v"),
    ("generic_password", "DB_PASSWORD={}", "Zq8,vW3;rT6}yP2"),
    ("telegram_token", 'TELEGRAM_BOT_TOKEN = "{}"', "7204183967:AxR2m9Kq4Lw7Zp3Nv8Tc5Hb1Yd6Fg0Js2Uq"),
]
# fmt: on
"""Secrets in the joins of names and values beyond ``NAME=value`` (each found whole)."""

# fmt: off
NOT_SECRETS: list[tuple[str, str]] = [
    ("documentation placeholder", "ANTHROPIC_API_KEY=sk-ant-api03-..."),
    ("angle-bracket placeholder", "OPENAI_API_KEY=<YOUR_TOKEN>"),
    ("Go-escaped placeholder", '{"t":"OPENAI_API_KEY=\\u003cYOUR_TOKEN\\u003e"}'),
    ("AWS documentation key", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
    ("AWS documentation secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("placeholder URL password", "DATABASE_URL=mysql://root:<password>@127.0.0.1:3306/app"),
    ("default container password", "DATABASE_URL=postgres://postgres:postgres@localhost/app"),
    ("git commit hash", "commit 726429aa344d11c6bb68df5751fdc89afc720976"),
    ("uuid", '"sessionId":"c2ce6f44-7ed4-457b-9e2f-eb89414c343c"'),
    ("message id", '"id":"msg_01eJZiBSwaPqKx8VIuvdnUqt","requestId":"req_011CUzR7kq3X9e4YcH2aGbLw"'),
    ("package integrity", '"integrity": "sha512-7TgQ9mJm0FQAx9ZtY0xZ1dS0Y8vF2c+3hV6kQ2mN5pR8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uV8xA1cD4fG7iL0o=="'),
    ("GCP key id", '"private_key_id": "372f4d8cf3ef0676639221166435710f895f0234"'),
    ("function call", "token_retry = ctx.stream_filter(chunk, 24)"),
    ("token count", '"output_tokens": 123456789012, "cache_read_input_tokens": 98765432101'),
    ("public certificate", "-----BEGIN CERTIFICATE-----\nMIICVDCCAbygAwIBAm0LX2cq5RShJPKhhPPzse0jJ8UmYp50snh29pBe1kINeWHT\n-----END CERTIFICATE-----"),
    ("ssh public key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI7dDp85KKJsQ97FA2PGS4JawydytfUePhqjVQHah0EGC dev@host"),
    ("repeated prefix", "sk-proj-" * 40),
    ("prose about keys", "The key is not set; see the token docs for the password policy."),
    ("Windows variable", '<add key="ClearTextPassword" value="%NUGET_PASSWORD%" />'),
    ("Terraform variable", "administrator_login_password = var.admin_password"),
    ("placeholder tag before a URL's host", "mysql://root:<password>@127.0.0.1:3306/db"),
    ("curl placeholder in brackets", "curl --user neo4j:[PASSWORD] http://[IP]:7474/db/data/"),
    ("curl variables", 'curl -u "${username}":"${password}" https://api.corp.net'),
    ("shell redirect after a name", "echo done > password.txt"),
    ("camel-case member, not a Vault token", "s.makeKubeConfigController = args"),
    ("Stripe-like identifier", "sk_test_connection_pool = make_pool()"),
]
# fmt: on
"""Look-alikes that must pass through untouched."""

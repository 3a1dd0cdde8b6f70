"""The strict local account and what runs on it: `strict/` (AWS's rules over the emulator, one module per emulated
service), `iam` (IAM decided from the synthesized template), `template` (that template), `runner` (the real workflow
definition run locally), the emulator, a local organization and the demo's seed.

For tests, `make demo` and the benchmarks. May import anything of the package (the functions it runs, the command
line whose endpoint check the seed uses, the demo's seed file); nothing in the Lambda bundle imports it, and infra/asset.py
leaves it out.
"""

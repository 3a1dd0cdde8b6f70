"""Infrastructure code read for `check`: CloudFormation and SAM templates, CDK output, Terraform plans and
OpenAPI documents, each policy found with the place in the file it was written (CLI only: none of this
reaches the Lambda bundle).

May import: the core and `policy_forms`; only the `check` command (remediator.cli.check) imports it."""

"""`python manage.py api_token NAME [--rotate]`"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotations.models import User
from evalsite.auth import token_expired


class Command(BaseCommand):
    help = (
        "Print a user's API token alone on the last line: the current one, or a new one when there is "
        "none, it has expired (API_TOKEN_LIFETIME_SECONDS) or --rotate is given (the old one stops working)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="replace the token; the old one stops working"
        )

    def handle(self, *args, username: str, rotate: bool = False, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        with transaction.atomic():
            token = Token.objects.select_for_update().filter(user=user).first()
            if token is not None and (rotate or token_expired(token)):
                why = "replaced the old token: it no longer works" if rotate else "the old token had expired"
                self.stderr.write(why)
                token.delete()
                token = None
            if token is None:
                token = Token.objects.create(user=user)
        self.stdout.write(token.key)

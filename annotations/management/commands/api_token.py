from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from annotations.models import User


class Command(BaseCommand):
    help = "Print a user's API token (created if missing) alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)

import secrets

from django.core.management.base import BaseCommand, CommandError

from annotations.models import User


class Command(BaseCommand):
    help = (
        "Create a user with a role (annotator, researcher or admin). Admins also get Django admin access. "
        "Without --password a random one is generated; the last line is 'username password'."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help="annotator, researcher or admin")
        parser.add_argument("--password", help="password (default: a generated one, printed)")

    def handle(self, *args, username: str, role: str, password: str | None, **options):
        if role not in User.UserRole.values:
            raise CommandError(f"--role: must be one of {', '.join(User.UserRole.values)} (got {role!r})")
        username = username.strip()
        if not username:
            raise CommandError("username must not be empty")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} already exists")
        if password is not None and len(password) < 8:
            raise CommandError("--password: must be at least 8 characters")
        password = password or secrets.token_urlsafe(12)
        is_admin = role == User.UserRole.ADMIN
        user = User.objects.create_user(
            username=username, password=password, role=role, is_staff=is_admin, is_superuser=is_admin
        )
        self.stderr.write(f"created {role} {user.username!r} (id {user.pk})")
        self.stdout.write(f"{user.username} {password}")

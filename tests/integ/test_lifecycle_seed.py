"""The seed lifecycle policy end to end (ECR-API.md 3.5 StartLifecyclePolicyPreview /
GetLifecyclePolicyPreview, 4.5.3 evaluation, 4.5.5 application; README "lifecycle" and "gc").

"Keep the last 20 tagged images; expire untagged after 7 days": images are pushed over 30
simulated days (berth runs under libfaketime, see lcgclib.FakeClock), then a user previews the
policy, lets berth apply it (background thread, or `berth lifecycle`), checks that DescribeImages
and /v2 agree, and watches gc free the bytes while pushes and pulls go on."""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import BerthCase, error_code, uniq  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from lcgclib import (DAY, SEED_POLICY, ClockedBerth, FakeClock, Layer,  # noqa: E402
                     blob_bytes, blob_digests, blob_files, check_pull, faketime_available, fsck,
                     gc, image_of, lifecycle, seed_expected)
from ocilib import V2  # noqa: E402

# (day relative to the end of the story, tags to push with; [] = untagged). Chronological.
SCHEDULE = sorted(
    [(-31 + k, ["build-%d" % k] + (["release-1"] if k == 2 else [])
      + (["stable"] if k == 26 else [])) for k in range(1, 27)]
    + [(-20.5, []),                      # U1: untagged, 20.5 days old -> rule 2
       (-12.5, ["latest"]),              # X: "latest", moved away at -3.5 -> untagged -> rule 2
       (-9.5, []),                       # U2 -> rule 2
       (-7 - 1.0 / 24, []),              # U3: 7 days and 1 hour -> rule 2
       (-7 + 1.0 / 24, []),              # U4: 6 days 23 hours -> kept
       (-3.5, ["latest"]),               # Y: takes "latest" from X
       (-2.5, [])],                      # U5 -> kept
    key=lambda e: e[0])
N_IMAGES = len(SCHEDULE)                 # 33
N_TAGGED_AT_END = 27                     # build-1..26 + Y
N_EXPIRED = 7 + 4                        # rule 1: build-1..7; rule 2: U1, X, U2, U3


def need_faketime():
    if not faketime_available():
        raise unittest.SkipTest("libfaketime not installed (apt-get install -y faketime)")


class Pushed:
    def __init__(self, img, tags, pushed_at, seq, unique):
        self.img = img
        self.digest = img.digest
        self.tags = list(tags)      # tags at the end of the story
        self.pushed_at = pushed_at  # faked epoch seconds at the push
        self.seq = seq
        self.unique = unique        # {digest: size} of blobs only this image uses


class Story:
    """Pushes SCHEDULE into a new repository, moving the fake clock day by day, and ends with
    the clock at offset `end`."""

    def __init__(self, b, clock, end=0, unique_size=40 * 1024):
        self.b, self.clock, self.end = b, clock, end
        self.c = b.client()
        self.v = V2(b.url)
        self.repo = uniq("seed")
        self.c.create_repository(repositoryName=self.repo)
        self.base = [Layer(16 * 1024), Layer(8 * 1024)]   # shared by every image
        self.images = []
        by_tag = {}
        for seq, (day, tags) in enumerate(SCHEDULE):
            clock.set_offset(end + day * DAY)
            uniq_layer = Layer(unique_size)
            img = image_of(self.base + [uniq_layer])
            when = clock.now()
            if tags:
                for t in tags:
                    self.v.push_image(self.repo, img, tag=t)
            else:
                self.v.push_image(self.repo, img)
            blobs = blob_digests(img)
            unique = {d: s for d, s in blobs.items()
                      if d not in {l.digest for l in self.base}}
            p = Pushed(img, tags, when, seq, unique)
            for t in tags:
                if t in by_tag:
                    by_tag[t].tags.remove(t)
                by_tag[t] = p
            self.images.append(p)
        clock.set_offset(end)
        self.by_digest = {p.digest: p for p in self.images}
        self.by_tag = by_tag
        assert len(self.images) == N_IMAGES

    def expected(self):
        """{digest: rule priority} the seed policy acts on now."""
        return seed_expected([(p.digest, p.tags, p.pushed_at, p.seq) for p in self.images],
                             self.clock.now())

    def describe(self):
        out = {}
        for page in self.c.get_paginator("describe_images").paginate(repositoryName=self.repo):
            for d in page["imageDetails"]:
                out[d["imageDigest"]] = d
        return out

    def v2_tags(self):
        r = self.v.get("%s/tags/list" % self.repo)
        assert r.status_code == 200, r.text
        return sorted(r.json().get("tags") or [])


class SeedMixin:
    def check_pushed_at(self, story):
        """imagePushedAt follows the faked clock; tags are as the schedule left them."""
        det = story.describe()
        self.assertEqual(set(story.by_digest), set(det))
        for p in story.images:
            d = det[p.digest]
            self.assertLess(abs(d["imagePushedAt"].timestamp() - p.pushed_at), 120,
                            "imagePushedAt of the image pushed at fake day %s"
                            % SCHEDULE[p.seq][0])
            self.assertEqual(sorted(p.tags), sorted(d.get("imageTags", [])))
        # the story really spans 30 days
        ages = sorted(time.time() - d["imagePushedAt"].timestamp() for d in det.values())
        self.assertGreater(ages[-1], 29.9 * DAY)
        self.assertLess(ages[0], 3 * DAY)

    def check_preview(self, story, resp, expected):
        """A GetLifecyclePolicyPreview response against {digest: priority}."""
        self.assertEqual("COMPLETE", resp["status"])
        self.assertEqual(story.repo, resp["repositoryName"])
        res = resp["previewResults"]
        got = {r["imageDigest"]: r for r in res}
        self.assertEqual(len(res), len(got), "duplicate preview results")
        self.assertEqual(set(expected), set(got))
        det = story.describe()
        for d, prio in expected.items():
            r = got[d]
            self.assertEqual(prio, r["appliedRulePriority"], d)
            self.assertEqual({"type": "EXPIRE"}, r["action"])
            self.assertEqual("STANDARD", r["storageClass"])
            self.assertEqual(sorted(story.by_digest[d].tags), sorted(r.get("imageTags", [])))
            self.assertEqual(det[d]["imagePushedAt"], r["imagePushedAt"])
        self.assertEqual({"expiringImageTotalCount": len(expected)}, resp["summary"])

    def check_applied(self, story, expected):
        """DescribeImages and /v2 agree: exactly the expected images are gone."""
        kept = [p for p in story.images if p.digest not in expected]
        gone = [p for p in story.images if p.digest in expected]
        self.assertEqual({p.digest for p in kept}, set(story.describe()))
        self.assertEqual(sorted(t for p in kept for t in p.tags), story.v2_tags())
        for p in gone:
            for ref in p.tags + [p.digest]:
                r = story.v.get("%s/manifests/%s" % (story.repo, ref))
                self.assertEqual(404, r.status_code, "GET %s of an expired image" % ref)
                self.assertEqual("MANIFEST_UNKNOWN", r.json()["errors"][0]["code"])
        r = story.c.batch_get_image(repositoryName=story.repo,
                                    imageIds=[{"imageDigest": p.digest} for p in gone])
        self.assertEqual([], r["images"])
        self.assertEqual({p.digest for p in gone},
                         {f["imageId"]["imageDigest"] for f in r["failures"]})
        self.assertEqual({"ImageNotFound"}, {f["failureCode"] for f in r["failures"]})
        for p in kept:
            for ref in (p.tags or [p.digest]):
                self.assertEqual([], check_pull(story.v, story.repo, ref, p.img))

    def check_history(self, story, expected, clock):
        h = lifecycle(story.b.data_dir, repo=story.repo, history=True, clock=clock).history
        self.assertEqual(expected, {e["digest"]: e["rule"] for e in h})
        for e in h:
            self.assertEqual("EXPIRE", e["action"])
            self.assertEqual(story.repo, e["repo"])
            self.assertEqual(sorted(story.by_digest[e["digest"]].tags), sorted(e["tags"]))


# --------------------------------------------------------------------------------------------


class SeedPreview(SeedMixin, BerthCase):
    """Preview only (nothing applied): results, filter, imageIds, pagination, unsaved text."""

    @classmethod
    def setUpClass(cls):
        need_faketime()
        cls.clock = FakeClock()
        cls.addClassCleanup(cls.clock.cleanup)
        cls.b = ClockedBerth(clock=cls.clock, name="lc-preview",
                             extra_args=["--lifecycle-interval", "0", "--gc-interval", "0"])
        cls.b.start()
        cls.addClassCleanup(cls.b.cleanup)
        cls.story = Story(cls.b, cls.clock)
        cls.story.c.put_lifecycle_policy(repositoryName=cls.story.repo,
                                         lifecyclePolicyText=SEED_POLICY)

    def start(self, **kw):
        s = self.story
        r = s.c.start_lifecycle_policy_preview(repositoryName=s.repo, **kw)
        self.assertEqual(s.repo, r["repositoryName"])
        self.assertIn(r["status"], ("IN_PROGRESS", "COMPLETE"))
        return r

    def get(self, **kw):
        return self.story.c.get_lifecycle_policy_preview(repositoryName=self.story.repo, **kw)

    def test_pushed_at_follows_fake_clock(self):
        self.check_pushed_at(self.story)

    def test_preview_shows_exactly_what_would_expire(self):
        s = self.story
        exp = s.expected()
        self.assertEqual(N_EXPIRED, len(exp))
        self.assertEqual(7, sum(1 for v in exp.values() if v == 1))
        r = self.start()
        self.assertEqual(SEED_POLICY, r["lifecyclePolicyText"])
        g = self.get()
        self.assertEqual(SEED_POLICY, g["lifecyclePolicyText"])
        self.check_preview(s, g, exp)
        self.assertNotIn("nextToken", g)
        # a preview applies nothing
        self.assertEqual(N_IMAGES, len(s.describe()))
        # the botocore waiter agrees the preview is complete
        s.c.get_waiter("lifecycle_policy_preview_complete").wait(
            repositoryName=s.repo, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        # and `berth lifecycle --dry-run` prints the same decisions, changing nothing
        dry = lifecycle(self.b.data_dir, repo=s.repo, dry_run=True, clock=self.clock)
        self.assertEqual(len(exp), dry.count)
        self.assertEqual(exp, {a["digest"]: a["rule"] for a in dry.actions})
        for a in dry.actions:
            self.assertEqual("would-expire", a["verb"])
            self.assertEqual(s.repo, a["repo"])
            self.assertEqual(sorted(s.by_digest[a["digest"]].tags), a["tags"])
        self.assertEqual(N_IMAGES, len(s.describe()))
        self.assertEqual(0, s.c.get_lifecycle_policy(
            repositoryName=s.repo)["lastEvaluatedAt"].timestamp())

    def test_preview_filter_tag_status(self):
        exp = self.story.expected()
        self.start()
        for ts, want in (("TAGGED", {d for d, p in exp.items() if p == 1}),
                         ("UNTAGGED", {d for d, p in exp.items() if p == 2}),
                         ("ANY", set(exp))):
            with self.subTest(tagStatus=ts):
                g = self.get(filter={"tagStatus": ts})
                self.assertEqual("COMPLETE", g["status"])
                got = [r["imageDigest"] for r in g["previewResults"]]
                self.assertEqual(want, set(got))
                self.assertEqual(len(want), len(got))
                for r in g["previewResults"]:
                    self.assertEqual(exp[r["imageDigest"]] == 1, bool(r.get("imageTags")))

    def test_preview_image_ids(self):
        s = self.story
        exp = s.expected()
        self.start()
        kept = s.by_tag["build-20"]
        untagged_old = [p for p in s.images if not p.tags and p.digest in exp][0]
        g = self.get(imageIds=[{"imageTag": "build-3"}, {"imageDigest": kept.digest},
                               {"imageDigest": untagged_old.digest},
                               {"imageTag": "release-1"}])
        self.assertEqual({s.by_tag["build-3"].digest: 1, s.by_tag["release-1"].digest: 1,
                          untagged_old.digest: 2},
                         {r["imageDigest"]: r["appliedRulePriority"]
                          for r in g["previewResults"]})
        self.assertEqual(3, len(g["previewResults"]))
        b2 = [r for r in g["previewResults"] if r["imageDigest"] == s.by_tag["build-2"].digest]
        self.assertEqual(["build-2", "release-1"], sorted(b2[0]["imageTags"]))
        # imageIds cannot be combined with pagination (spec 1.8)
        with self.assertRaises(ClientError) as cm:
            self.get(imageIds=[{"imageTag": "build-3"}], maxResults=5)
        self.assertEqual("InvalidParameterException", error_code(cm.exception))

    def test_preview_pagination(self):
        s = self.story
        exp = s.expected()
        self.start()
        seen, token, pages = [], None, 0
        while True:
            kw = {"maxResults": 4}
            if token:
                kw["nextToken"] = token
            g = self.get(**kw)
            self.assertLessEqual(len(g["previewResults"]), 4)
            self.assertEqual({"expiringImageTotalCount": len(exp)}, g["summary"])
            seen += [r["imageDigest"] for r in g["previewResults"]]
            pages += 1
            token = g.get("nextToken")
            if not token:
                break
            self.assertLess(pages, 10, "pagination does not end")
        self.assertEqual(3, pages)  # 4 + 4 + 3
        self.assertEqual(len(seen), len(set(seen)), "a result appeared on two pages")
        self.assertEqual(set(exp), set(seen))
        # the botocore paginator agrees, and the order equals the unpaginated order
        full = [r["imageDigest"] for r in self.get()["previewResults"]]
        self.assertEqual(full, seen)
        pag = [r["imageDigest"] for page in s.c.get_paginator(
            "get_lifecycle_policy_preview").paginate(repositoryName=s.repo,
                                                     PaginationConfig={"PageSize": 5})
               for r in page["previewResults"]]
        self.assertEqual(full, pag)

    def test_preview_of_unsaved_policy_text(self):
        """A candidate policy (with a transition rule) is previewed without being stored."""
        s = self.story
        text = ('{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged",'
                '"tagPrefixList":["build"],"countType":"imageCountMoreThan","countNumber":5},'
                '"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any",'
                '"countType":"sinceImagePulled","countUnit":"days","countNumber":10},'
                '"action":{"type":"transition","targetStorageClass":"archive"}}]}')
        r = self.start(lifecyclePolicyText=text)
        self.assertEqual(text, r["lifecyclePolicyText"])
        g = self.get()
        self.assertEqual("COMPLETE", g["status"])
        self.assertEqual(text, g["lifecyclePolicyText"])
        res = {x["imageDigest"]: x for x in g["previewResults"]}
        builds = {s.by_tag["build-%d" % k].digest for k in range(1, 22)}
        # rule 2 only sees images rule 1 did not select; never pulled -> pullRef = push time
        transitioning = {p.digest for p in s.images
                         if not any(t.startswith("build") for t in p.tags)
                         and self.clock.now() - p.pushed_at > 10 * DAY}
        self.assertEqual(2, len(transitioning))  # X (12.5 days) and U1 (20.5 days)
        self.assertEqual(builds | transitioning, set(res))
        for d in builds:
            self.assertEqual(({"type": "EXPIRE"}, 1),
                             (res[d]["action"], res[d]["appliedRulePriority"]))
        for d in transitioning:
            self.assertEqual(({"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}, 2),
                             (res[d]["action"], res[d]["appliedRulePriority"]))
            self.assertEqual("STANDARD", res[d]["storageClass"])
        self.assertEqual({"expiringImageTotalCount": 21,
                          "transitioningImageTotalCounts": [
                              {"targetStorageClass": "ARCHIVE", "imageTotalCount": 2}]},
                         g["summary"])
        # the stored policy is untouched, nothing was applied
        self.assertEqual(SEED_POLICY, s.c.get_lifecycle_policy(
            repositoryName=s.repo)["lifecyclePolicyText"])
        self.assertEqual(N_IMAGES, len(s.describe()))

    def test_preview_errors(self):
        c = self.b.client()
        repo = uniq("nopol")
        c.create_repository(repositoryName=repo)
        self.assertClientError("LifecyclePolicyPreviewNotFoundException",
                               c.get_lifecycle_policy_preview, repositoryName=repo)
        self.assertClientError("LifecyclePolicyNotFoundException",
                               c.start_lifecycle_policy_preview, repositoryName=repo)
        self.assertClientError("RepositoryNotFoundException",
                               c.start_lifecycle_policy_preview, repositoryName=uniq("none"),
                               lifecyclePolicyText=SEED_POLICY)
        # a preview of an empty repository
        c.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=SEED_POLICY)
        g = c.get_lifecycle_policy_preview(repositoryName=repo)
        self.assertEqual(("COMPLETE", [], {"expiringImageTotalCount": 0}),
                         (g["status"], g["previewResults"], g["summary"]))


class SeedApplyCli(SeedMixin, BerthCase):
    """The CLI applier (`berth lifecycle`) and `berth gc`, while the server runs."""

    def setUp(self):
        need_faketime()
        self.clock = FakeClock()
        self.addCleanup(self.clock.cleanup)
        self.b = ClockedBerth(clock=self.clock, name="lc-cli",
                              extra_args=["--lifecycle-interval", "0", "--gc-interval", "0"])
        self.b.start()
        self.addCleanup(self.b.cleanup)

    def test_cli_apply_then_gc(self):
        s = Story(self.b, self.clock)
        s.c.put_lifecycle_policy(repositoryName=s.repo, lifecyclePolicyText=SEED_POLICY)
        exp = s.expected()
        s.c.start_lifecycle_policy_preview(repositoryName=s.repo)
        self.check_preview(s, s.c.get_lifecycle_policy_preview(repositoryName=s.repo), exp)
        files_before = blob_files(self.b.data_dir)

        # apply every repository's policy with the CLI
        res = lifecycle(self.b.data_dir, clock=self.clock)
        self.assertEqual(len(exp), res.count)
        self.assertEqual(exp, {a["digest"]: a["rule"] for a in res.actions})
        self.assertEqual({"expired"}, {a["verb"] for a in res.actions})
        self.assertEqual(sorted(s.by_digest[d].pushed_at for d in exp),
                         [s.by_digest[a["digest"]].pushed_at for a in res.actions],
                         "actions are not oldest first (spec 4.5.3)")
        self.check_applied(s, exp)
        self.check_history(s, exp, self.clock)
        ev = s.c.get_lifecycle_policy(repositoryName=s.repo)["lastEvaluatedAt"].timestamp()
        self.assertLess(abs(ev - self.clock.now()), 120, "lastEvaluatedAt")
        # a second pass finds nothing more to do
        again = lifecycle(self.b.data_dir, repo=s.repo, clock=self.clock)
        self.assertEqual((0, []), (again.count, again.actions))
        # lifecycle deletes images, not bytes
        self.assertEqual(files_before, blob_files(self.b.data_dir))

        # gc: exactly the blobs only expired images used
        garbage = {}
        for d in exp:
            garbage.update(s.by_digest[d].unique)
        dry = gc(self.b.data_dir, grace="1h", dry_run=True, clock=self.clock)
        self.assertEqual((len(garbage), sum(garbage.values()), 0, 0),
                         (dry.blobs, dry.bytes, dry.uploads, dry.orphans), dry)
        self.assertEqual(files_before, blob_files(self.b.data_dir), "dry run removed files")
        real = gc(self.b.data_dir, grace="1h", clock=self.clock)
        self.assertEqual((len(garbage), sum(garbage.values()), 0, 0),
                         (real.blobs, real.bytes, real.uploads, real.orphans), real)
        after = blob_files(self.b.data_dir)
        self.assertEqual({d: n for d, n in files_before.items() if d not in garbage}, after)
        self.assertEqual(blob_bytes(self.b.data_dir),
                         sum(files_before.values()) - sum(garbage.values()))
        for d in garbage:
            r = s.v.head("%s/blobs/%s" % (s.repo, d))
            self.assertEqual(404, r.status_code, "HEAD of a collected blob")
        self.assertEqual(0, gc(self.b.data_dir, grace="0s", clock=self.clock).blobs)
        # everything that is left still pulls, and the store is consistent
        self.check_applied(s, exp)
        f = fsck(self.b.data_dir, clock=self.clock)
        self.assertEqual(0, f.rc, f.text())


class SeedApplyBackground(SeedMixin, BerthCase):
    """The user story: set the policy, see what it would expire, let the background thread
    apply it, and watch disk usage fall while pushes and pulls continue."""

    def setUp(self):
        need_faketime()
        self.clock = FakeClock()
        self.addCleanup(self.clock.cleanup)
        self.b = ClockedBerth(clock=self.clock, name="lc-bg",
                              extra_args=["--lifecycle-interval", "1s", "--gc-interval", "1s",
                                          "--gc-grace", "1h"])
        self.b.start()
        self.addCleanup(self.b.cleanup)

    def test_background_apply_while_pushing_and_pulling(self):
        s = Story(self.b, self.clock)
        self.check_pushed_at(s)
        exp = s.expected()
        self.assertEqual(N_EXPIRED, len(exp))
        # 1. the user previews the policy text before setting it
        s.c.start_lifecycle_policy_preview(repositoryName=s.repo,
                                           lifecyclePolicyText=SEED_POLICY)
        g = s.c.get_lifecycle_policy_preview(repositoryName=s.repo)
        self.check_preview(s, g, exp)
        time.sleep(2.5)  # a background pass or two: without a policy nothing happens
        self.assertEqual(N_IMAGES, len(s.describe()))

        kept = [p for p in s.images if p.digest not in exp]
        garbage = {}
        for d in exp:
            garbage.update(s.by_digest[d].unique)
        before = blob_bytes(self.b.data_dir)

        # 2. pushes (another repository, same base layers) and pulls continue meanwhile
        other = uniq("other")
        s.c.create_repository(repositoryName=other)
        stop = threading.Event()
        errors, pushed, samples = [], [], []
        lock = threading.Lock()

        def pusher():
            v = V2(self.b.url)
            try:
                n = 0
                while not stop.is_set() and n < 30:
                    img = image_of(s.base + [Layer(1024)])
                    r = v.push_image(other, img, tag="o-%d" % n)
                    if r.status_code != 201:
                        raise AssertionError("push -> %d" % r.status_code)
                    with lock:
                        pushed.append(img)
                    n += 1
                    time.sleep(0.1)
            except Exception as e:  # noqa: BLE001
                errors.append("pusher: %r" % e)
            finally:
                v.close()

        def puller():
            v = V2(self.b.url)
            rnd = random.Random(7)
            try:
                while not stop.is_set():
                    p = rnd.choice(kept)
                    ref = p.tags[0] if p.tags else p.digest
                    probs = check_pull(v, s.repo, ref, p.img)
                    if probs:
                        errors.append("pull of kept image: %s" % probs)
            except Exception as e:  # noqa: BLE001
                errors.append("puller: %r" % e)
            finally:
                v.close()

        def sampler():
            while not stop.is_set():
                samples.append(blob_bytes(self.b.data_dir))
                time.sleep(0.2)

        threads = [threading.Thread(target=f, daemon=True) for f in (pusher, puller, sampler)]
        for t in threads:
            t.start()
        try:
            # 3. set it and let berth apply it
            s.c.put_lifecycle_policy(repositoryName=s.repo, lifecyclePolicyText=SEED_POLICY)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                left = set(s.describe())
                on_disk = blob_files(self.b.data_dir)
                if not (left & set(exp)) and not (set(garbage) & set(on_disk)):
                    break
                time.sleep(0.3)
            time.sleep(1.0)  # a little more traffic after the pass
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual([], errors)

        # 4. exactly the previewed images are gone, everywhere
        self.check_applied(s, exp)
        self.check_history(s, exp, self.clock)
        ev = s.c.get_lifecycle_policy(repositoryName=s.repo)["lastEvaluatedAt"].timestamp()
        self.assertLess(abs(ev - self.clock.now()), 120, "lastEvaluatedAt")
        for img in pushed:
            self.assertEqual([], check_pull(s.v, other, img.digest, img))

        # 5. the bytes are gone from the data directory; what is referenced stays
        on_disk = blob_files(self.b.data_dir)
        self.assertEqual(set(), set(garbage) & set(on_disk), "expired images' blobs remain")
        for p in kept:
            for d in blob_digests(p.img):
                self.assertIn(d, on_disk)
        new_bytes = sum(n for img in pushed for d, n in blob_digests(img).items()
                        if d not in {l.digest for l in s.base})
        self.assertEqual(before - sum(garbage.values()) + new_bytes, blob_bytes(self.b.data_dir))
        self.assertLess(blob_bytes(self.b.data_dir), before, "disk usage did not fall")
        self.assertTrue(any(b < a for a, b in zip(samples, samples[1:])),
                        "no fall seen in the disk usage samples: %s" % samples)
        f = fsck(self.b.data_dir, clock=self.clock)
        self.assertEqual(0, f.rc, f.text())


if __name__ == "__main__":
    unittest.main()

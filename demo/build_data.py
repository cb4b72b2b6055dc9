#!/usr/bin/env python
"""Build the evalsite demo data: a product-review corpus, an evaluation set and a training set.

Deterministic and stdlib only. Run from anywhere:

    .venv/bin/python demo/build_data.py

It writes, next to this script:

* ``data/products.jsonl`` - one product per line: name, category, split, key features (with the
  verdict reviewers reach on each), and 4-6 reviews (rating, text, which features each mentions).
* ``data/eval.jsonl``     - 100 evaluation prompts, 25 per task.
* ``data/train.jsonl``    - >= 320 instruction/answer pairs for LoRA fine-tuning.

Prompt rows carry the ``Prompt`` fields of the spec: external_id, task, text, context, reference,
label. Evaluation prompts come only from products whose split is ``eval``; training pairs only from
products whose split is ``train``, so no review text is shared between the two sets.

Label conventions (machine-checkable truth):

* sentiment       -> "positive" | "negative" | "neutral" (rating 4-5 / 1-2 / 3; a 3-star review
                     always mixes one praised and one criticised feature). The reference starts with
                     the capitalised label word: "Positive. ...".
* features        -> one lowercase feature phrase (1-3 words) that occurs literally in the context
                     and that a correct answer must name.
* recommendation  -> "yes" | "no": yes when reviewers praise the feature the need is about, no when
                     they criticise it. The reference starts with "Yes." or "No.".
* relevance       -> "" (no automated check; judged against the reference).

The script validates its output and prints a summary; it exits non-zero if a check fails.
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

SEED = 20240611
HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "data"
MAX_CONTEXT = 700
EVAL_PER_TASK = 25
TRAIN_PER_TASK = 80

# ---------------------------------------------------------------------------------------------
# Corpus, written by hand.
#
#   ## Product name | category | split
#   +/- feature phrase | what reviewers say (verb phrase whose subject is "the <feature>") | a need
#       review sentence about the feature (contains the feature phrase)
#       another review sentence about the feature (contains the feature phrase)
#
# "+" marks a strength (reviewers praise it), "-" a weakness (reviewers criticise it).
# ---------------------------------------------------------------------------------------------
CORPUS = """
## Auralite Pro Wireless Earbuds | electronics | eval
+ battery life | lasts well beyond a full day per charge | long battery life for long trips
    Battery life is excellent, and I only charge the case about twice a week.
    The battery life easily covers a full workday plus the commute home.
+ fit | stays secure and comfortable, even on runs | earbuds that stay put during workouts
    The fit is snug and they have never fallen out, even on long runs.
    I was worried about the fit, but with the medium tips they stay put through a whole gym session.
- noise cancellation | barely muffles train and bus noise | strong noise cancellation for a noisy commute
    The noise cancellation is weak, and I can still hear every announcement on the train.
    Don't buy these for the noise cancellation, because bus engine rumble comes straight through.
- call quality | is poor | a clear microphone for work calls
    Call quality is poor, and colleagues say I sound muffled and far away.
    People on the other end complain about the call quality whenever I'm outside.

## BrightBeam 4K Streaming Stick | electronics | train
+ picture quality | is sharp and impressive in 4K | a sharp 4K picture on a new TV
    Picture quality is sharp and the HDR looks great on my new TV.
    The picture quality in 4K is noticeably better than my TV's built-in apps.
+ setup | is quick and simple | a device that a non-technical relative can set up alone
    Setup took less than five minutes, including signing into all my apps.
    The setup is so simple that my dad managed it on his own.
+ remote | is compact and its voice search works well | a simple remote with voice search
    The remote is small but well laid out, and voice search actually understands me.
    I love the remote, since the voice search saves a lot of typing.
- home screen | is cluttered with ads and sponsored rows | a clean interface without ads
    The home screen is cluttered with ads and sponsored shows I never asked for.
    Every update seems to add more ads to the home screen.

## VoltMate 20000 mAh Power Bank | electronics | eval
+ capacity | is large enough for several full phone charges | enough capacity for a long weekend off-grid
    The capacity is real: it charged my phone four times over a camping weekend.
    Capacity is huge, enough to top up both my phone and my tablet on a long flight.
- charging speed | is disappointingly slow | fast charging between meetings
    Charging speed is disappointing, and my phone takes about three hours to fill up.
    The charging speed is much slower than advertised, even with the included cable.
- weight | makes it heavy and bulky to carry | something light to carry every day
    The weight is a real problem, because it drags my jacket pocket down.
    At this weight I end up leaving it at home most days.
- recharge time | is very long, often needing a whole night | a power bank that refills itself quickly
    Recharge time for the bank itself is painful, roughly ten hours from empty.
    The recharge time is so long that I have to leave it plugged in overnight every time.

## ClearView 27-inch QHD Monitor | electronics | train
+ color accuracy | is excellent straight out of the box | accurate colors for photo editing
    Color accuracy is excellent straight out of the box, which matters for my photo work.
    I checked the color accuracy with a calibrator and it was already very close.
+ stand | adjusts easily, including raising the screen to eye level | a screen that adjusts to eye level
    The stand adjusts for height, tilt and swivel without wobbling.
    I like that the stand lets me raise the screen to eye level.
+ price | is very fair for a screen of this quality | good value on a tight budget
    The price is very fair for a screen this good.
    For the price, I don't think you can find a sharper monitor.
- speakers | are tinny and weak | usable built-in speakers for movies
    The built-in speakers are tinny and far too quiet.
    Forget the speakers, since they sound like an old phone.

## PulseFit Active Smartwatch | electronics | train
+ heart rate tracking | is accurate compared with a chest strap | accurate heart rate tracking for interval training
    Heart rate tracking closely matches my chest strap, even during intervals.
    I trust the heart rate tracking, which has been spot on in every run I compared.
+ screen | is bright and easy to read in sunlight | a screen that is readable outdoors
    The screen is bright enough to read in full sunlight.
    Even on sunny bike rides the screen stays easy to read.
- battery life | is short, so it needs charging almost every day | a watch that goes a week between charges
    Battery life is the weak spot, as it barely lasts a day and a half with GPS on.
    I was hoping for better battery life, but I have to charge it every night.
- companion app | syncs slowly and sometimes crashes | a reliable app for tracking progress
    The companion app is slow to sync and has crashed several times.
    Syncing through the companion app can take minutes, and sometimes it just fails.

## Boomcube Portable Bluetooth Speaker | electronics | train
+ sound quality | is rich and full for its size | big sound for small parties
    Sound quality is rich, with surprisingly solid bass for its size.
    The sound quality fills our whole patio without distorting.
+ waterproofing | holds up well around water | a speaker for the pool or the beach
    The waterproofing is legit, since it survived a dunk in the pool.
    I take it into the shower every day and the waterproofing has held up perfectly.
+ battery life | lasts at least a full day of playback | music all day at the beach
    Battery life is great, and it played for a full day at the beach.
    The battery life lasted an entire weekend trip on one charge.
- pairing | is unreliable and sometimes drops the connection | a speaker that connects reliably to several phones
    Pairing is flaky, and it sometimes drops the connection when someone walks between us.
    Pairing a second phone is a hassle and often fails on the first try.

## PageLite E-Reader | electronics | train
+ screen | is crisp and easy on the eyes | comfortable reading for hours
    The screen is crisp and so easy on the eyes that I read for hours.
    Reading on the screen feels like paper, even in bright sunlight.
+ battery life | lasts for weeks | a device that does not need daily charging
    Battery life lasts for weeks, so I barely think about charging.
    I've charged it twice in two months, and the battery life still impresses me.
+ front light | makes reading in the dark pleasant | reading in bed without disturbing a partner
    The warm front light makes bedtime reading really pleasant.
    I like that the front light can dim very low without flickering.
+ weight | is low, so it is easy to hold and carry | something light to hold one-handed on the commute
    The weight is perfect for holding it with one hand on the train.
    At this weight it slips into my bag without me noticing.

## Lumo HD Webcam | electronics | train
- image quality | is grainy in normal indoor light | sharp video for client meetings
    Image quality is grainy unless the room is flooded with light.
    In my home office the image quality looks washed out and noisy.
- microphone | sounds poor on calls | a built-in microphone good enough for calls
    The built-in microphone picks up so much hiss that I switched to my headset.
    Colleagues said the microphone made me sound like I was in a tunnel.
+ clip | is sturdy and holds firmly | a webcam that mounts on both a laptop and a monitor
    The clip holds firmly on both my laptop and my thick monitor.
    The clip is sturdy and easy to adjust.
- autofocus | hunts constantly and blurs the picture | steady focus during presentations
    Autofocus keeps hunting whenever I move my hands.
    The autofocus blurs the picture every few seconds, which is distracting.

## CrispWave 5.5 L Air Fryer | kitchen | eval
+ cooking results | come out evenly crispy | crispy fries and wings without deep frying
    Cooking results are fantastic, and the fries come out evenly crispy.
    The cooking results beat my oven every time, especially for chicken wings.
+ capacity | is large enough for a family meal | enough capacity to feed a family of four
    The capacity is big enough to cook dinner for all four of us at once.
    I like the capacity, since a whole chicken fits in the basket.
+ basket | is non-stick and dishwasher safe | easy cleaning after weeknight dinners
    The basket is non-stick and goes straight in the dishwasher.
    Cleanup is easy because nothing sticks to the basket.
- noise | is louder than expected | a quiet appliance for an open-plan living space
    The noise is louder than I expected, like a hair dryer running.
    My only gripe is the fan noise, which makes it hard to talk in the kitchen.
+ controls | are simple, with presets that work | simple controls for a beginner cook
    The controls are simple, with presets that actually work.
    Even my kids can use the controls without reading the manual.

## Vortex Pro Blender | kitchen | train
+ power | crushes ice and frozen fruit in seconds | a blender for smoothies with frozen fruit
    The power is impressive, and it crushes ice in seconds.
    Frozen fruit is no match for the power of this motor.
- noise | is extremely loud | a quiet blender for early mornings
    The noise is brutal, and I can't use it before my family wakes up.
    It makes so much noise that the dog leaves the room.
- lid | leaks unless it is held down firmly | a leak-free blender for hot soups
    The lid leaks unless you hold it down firmly.
    I've had smoothie splatter on the counter twice because the lid popped up.
+ jar | is sturdy and easy to keep clean | a sturdy jar that is easy to clean
    The jar is sturdy glass and rinses clean in seconds.
    I like that the jar is heavy and doesn't stain.

## GrindMaster Burr Coffee Grinder | kitchen | train
+ grind consistency | is very even | consistent grinds for pour-over coffee
    The grind consistency is excellent, from espresso fine to French press coarse.
    My pour-over tastes better now thanks to the grind consistency.
+ grind settings | offer a wide range that is easy to dial in | easy switching between brew methods
    There are plenty of grind settings, and it is easy to dial in.
    The grind settings click clearly, so I can switch between brew methods quickly.
- static | makes grounds cling and scatter | a grinder that keeps the counter clean
    Static is an issue, and grounds cling to the chute and scatter on the counter.
    There is quite a bit of static, so I tap the bin before opening it.
+ noise level | is much lower than a blade grinder's | a quiet grinder for early mornings
    The noise level is much lower than my old blade grinder.
    It has a low noise level, so I can grind beans at six in the morning without waking anyone.

## Kensho 8-inch Chef's Knife | kitchen | train
+ sharpness | is razor-sharp out of the box and holds up | a sharp knife for precise vegetable prep
    Sharpness out of the box is incredible, and it glides through tomatoes.
    The sharpness has held up after two months of daily use.
+ balance | feels even between blade and handle, so the wrist does not tire | a comfortable knife for long prep sessions
    The balance is perfect, so long prep sessions don't tire my wrist.
    It has great balance between the blade and the handle.
+ handle | is comfortable to hold | a knife that is safe to hold with wet hands
    The handle is comfortable and doesn't slip even with wet hands.
    I like the handle, which fits my hand well.
- rust resistance | is weak, so spots appear if it is not dried right away | a low-maintenance knife that can sit wet in the sink
    Rust resistance is not great, and small spots appeared after I left it wet overnight.
    You have to dry it right away because the rust resistance is weak.

## EverSlide Nonstick Frying Pan | kitchen | eval
- nonstick coating | wears off within weeks | a pan that stays nonstick for years
    The nonstick coating started to peel after only three weeks.
    Eggs now stick badly, because the nonstick coating wore off so quickly.
- handle | works loose | a pan with a sturdy, cool-touch handle
    The handle gets hot on the stove and already feels loose.
    I had to tighten the handle twice in the first month.
+ heat distribution | is even across the base | even heat for pancakes
    Heat distribution is even, so pancakes brown nicely across the whole pan.
    I'll admit the heat distribution is good for a cheap pan.
- durability | is poor, with the pan warping within a month | a durable pan for everyday cooking
    Durability is poor, and the base has already warped so it wobbles on my glass hob.
    I expected better durability, but it warped within a month.

## AquaBoil Glass Electric Kettle | kitchen | train
+ boiling speed | is fast, about four minutes for a full kettle | a kettle that boils water fast
    Boiling speed is great, and a full kettle takes about four minutes.
    I'm impressed by the boiling speed compared to my stovetop kettle.
+ temperature settings | are precise and handy for tea and coffee | precise temperatures for green tea
    The temperature settings are perfect for my green and oolong teas.
    I use the temperature settings every day for pour-over coffee at 93 degrees.
- lid | is awkward and makes filling hard | a kettle that is easy to fill with one hand
    The lid is stiff and hard to open one-handed.
    Filling it is awkward because the lid only opens partway.
- keep-warm function | switches off after only thirty minutes | water kept hot for a long time
    The keep-warm function only lasts thirty minutes, which is too short.
    I was disappointed that the keep-warm function switches off so quickly.

## MixRight Stand Mixer | kitchen | train
+ motor | handles heavy bread dough without straining | a mixer that can knead bread dough
    The motor handles stiff bread dough without straining.
    I knead pizza dough twice a week and the motor never gets hot.
+ bowl | is big enough for double batches | a big bowl for double batches of cookies
    The bowl is big enough for a double batch of cookies.
    I love the bowl, which has a handle and holds a lot.
- weight | makes it very hard to lift and move | a mixer light enough to store in a cupboard
    The weight makes it hard to lift out of the cupboard.
    It now lives on the counter because of the weight.
+ attachments | are sturdy and easy to swap | sturdy attachments for whisking and kneading
    The attachments are sturdy and click on easily.
    All three attachments feel solid and go in the dishwasher.

## FreshLock Glass Food Containers | kitchen | train
+ glass | is sturdy and practical | containers that go from oven to microwave
    The glass is thick and goes from oven to microwave without problems.
    I like the glass, since it doesn't stain like my old plastic tubs.
- lids | crack or stop sealing after a few washes | leak-proof lids for carrying soup to work
    Two of the lids cracked after a few runs through the dishwasher.
    The lids stopped sealing, and soup leaked into my work bag.
- stacking | is awkward because the sizes do not nest | containers that stack neatly in a small kitchen
    Stacking is awkward because the sizes don't nest well.
    They take up a lot of space in the cupboard since the stacking is poor.
- value | is poor because the lids fail so soon | good value for weekly meal prep
    Value is poor when half the lids fail within a month.
    For the price I expected much better value.

## TrailNest 2-Person Tent | outdoor | eval
+ setup | is quick and easy | a tent one person can pitch alone
    Setup took me about ten minutes alone on the first try.
    The color-coded poles make setup easy, even in the dark.
+ weight | is light enough for backpacking | a light tent for backpacking
    The weight is low enough that I don't mind carrying it on long hikes.
    At this weight it is a great choice for backpacking trips.
- rain protection | fails in heavy rain, letting water inside | a tent that stays dry in heavy rain
    Rain protection is lacking, since water seeped in at the seams during a storm.
    After one night of heavy rain I had puddles inside, so the rain protection isn't great.
- interior space | is tight for two adults with gear | room for two adults and their gear
    Interior space is tight for two adults with gear.
    My partner and I kept bumping elbows because the interior space is so small.
+ ventilation | is good, keeping the tent airy | good airflow on warm nights
    Ventilation is good, and we woke up with almost no condensation.
    The mesh panels give great ventilation on warm nights.

## Summit 40 L Hiking Backpack | outdoor | train
+ comfort | is excellent on long hikes | a comfortable pack for all-day hikes
    Comfort is excellent, and the padded hip belt takes the weight off my shoulders.
    I did a 20 km hike and was impressed by the comfort the whole way.
+ pockets | are well placed and easy to reach on the move | easy access to snacks and maps on the trail
    The pockets are well placed, and I can reach my water without taking the pack off.
    I love the hip belt pockets for snacks and my phone.
+ rain cover | is built in and works well | a pack that keeps gear dry in the rain
    The built-in rain cover kept everything dry during a downpour.
    The rain cover deploys in seconds from the bottom pocket.
- zippers | snag and feel flimsy | rugged zippers for heavy daily use
    The zippers snag often and feel a bit flimsy.
    One of the zippers already catches on the fabric every time.

## NorthDown Three-Season Sleeping Bag | outdoor | train
+ warmth | keeps you cozy near freezing | warmth for camping near freezing
    Warmth is excellent, and I stayed cozy at about two degrees.
    I was surprised by the warmth on a frosty night in the mountains.
+ packed size | is tiny for a bag this warm | a sleeping bag that packs down small
    The packed size is tiny for a bag this warm.
    I love the packed size, which leaves plenty of room in my pack.
- zipper | snags on the lining constantly | a bag that is easy to get in and out of at night
    The zipper snags on the lining every single time.
    Getting out at night is a fight because the zipper keeps catching.
- length | is too short for people over about 1.85 m | room for a tall sleeper
    The length is too short for me at 1.88 m.
    Tall campers should check the length, since my feet pressed against the end.

## BlazeJet Camping Stove | outdoor | train
+ boil time | is fast | quick boiling for dehydrated meals
    Boil time is about three minutes for a liter, even at altitude.
    The boil time is fast enough that breakfast is ready before I pack the tent.
+ size | is tiny when folded | a compact stove for ultralight trips
    The size is tiny when folded, and it fits inside my pot with a gas canister.
    I love the folded size for ultralight trips.
- wind resistance | is poor without a windscreen | a stove that works in windy conditions
    Wind resistance is poor, so you really need a windscreen.
    On an exposed ridge the flame kept blowing out, so wind resistance is a weakness.
+ igniter | lights reliably on the first try | a stove that lights without matches
    The igniter lights first time, every time.
    I like the built-in igniter, which saves me from carrying matches.

## Lumina 400 Headlamp | outdoor | eval
+ brightness | is more than enough for night trails | a bright light for trail running at night
    Brightness on the high setting lights up the whole trail.
    The brightness is more than enough for night runs.
+ comfort | is great, even on long hikes | a headlamp that is comfortable for hours
    Comfort is great, and I forget I'm wearing it.
    The soft strap adds to the comfort on long night hikes.
+ battery life | lasts several nights of camping | a headlamp that lasts a multi-day trip without recharging
    Battery life lasts a whole weekend of camping on medium.
    I was impressed by the battery life, which lasted four nights on low.
- red light mode | is awkward to reach through the button sequence | quick access to red light for stargazing
    The red light mode is annoying to reach, because you have to cycle through every setting.
    I wish the red light mode had its own button.
+ waterproofing | holds up in rain and water | a headlamp that works in the rain
    Waterproofing held up fine during a rainy night hike.
    The waterproofing is solid, and it survived a drop in a stream.

## HydroPeak Insulated Water Bottle | outdoor | train
+ insulation | keeps drinks cold or hot all day | cold water all day on hot hikes
    The insulation keeps my water icy for a full day in the car.
    Insulation is excellent, and my coffee is still hot at lunch.
- lid | is hard to keep clean | a bottle that is easy to keep clean
    The lid has lots of little parts and is hard to clean.
    The lid started to smell after a few weeks no matter how I wash it.
+ durability | survives drops with only minor dents | a tough bottle for rough use
    Durability is great, and it survived a fall onto rocks with only a small dent.
    I've dropped it many times and the durability still impresses me.
- weight | is a lot to carry when it is full | a light bottle for running
    The weight is noticeable when it's full, so it's not for running.
    For a one-liter bottle the weight is a lot to carry.

## NeatBot S5 Robot Vacuum | home | eval
+ suction | picks up pet hair and crumbs easily | a vacuum that handles pet hair
    Suction is strong, and it picks up all the dog hair on our rugs.
    The suction handles crumbs and cat litter easily.
+ app | is easy to use for scheduling and maps | scheduled cleaning from a phone
    The app makes scheduling easy, and I set no-go zones in minutes.
    I like the app, which shows a clear map of every room.
- navigation | is poor, so it gets stuck under furniture or in cables | a vacuum that cleans on its own without getting stuck
    Navigation is poor, and it gets stuck under the sofa almost daily.
    It keeps tangling itself in cables, so the navigation needs work.
- dustbin | is small and needs emptying after every run | a vacuum that can run for days without emptying
    The dustbin is small and fills up after every run.
    With two dogs I have to empty the dustbin every day.

## PureAir 300 Air Purifier | home | train
+ filtration | noticeably reduces dust and allergy symptoms | relief from dust allergies
    The filtration is excellent, and my allergies have calmed down.
    We see much less dust on the shelves since the filtration started working.
+ night mode | is almost silent | a purifier quiet enough for a bedroom
    Night mode is almost silent, so it runs in our bedroom all night.
    I sleep fine with it on night mode right next to the bed.
+ air quality sensor | reacts quickly to cooking smoke and open windows | automatic adjustment to air quality
    The air quality sensor reacts quickly when I cook.
    I like watching the air quality sensor change color when I open a window.
- filter cost | is high | low running costs
    Filter cost is high, and replacements are needed every six months.
    The filter cost adds up, since a new one costs almost half the price of the unit.

## GlowArc LED Desk Lamp | home | train
+ brightness levels | range from a soft glow to very bright | adjustable light for late-night reading
    The brightness levels range from a soft glow to very bright.
    I use all five brightness levels depending on the time of day.
+ USB charging port | is handy for topping up a phone | a lamp that can also charge a phone
    The USB charging port is handy for topping up my phone.
    I like having a USB charging port on the base.
- arm | droops and will not hold its position | a lamp that stays exactly where you point it
    The arm droops slowly and won't hold its position.
    After a week the arm started sagging toward the desk.
- touch controls | are so sensitive that a light brush switches the lamp off | controls that do not trigger by accident
    The touch controls are so sensitive that it turns off when I brush it.
    The touch controls react to the slightest touch, which is annoying.

## CalmWeight Weighted Blanket | home | train
+ weight distribution | is even, with no clumping | even pressure for anxiety relief
    The weight distribution is even, with no clumping in the corners.
    I like the weight distribution, which stays even after washing.
+ sleep quality | has improved noticeably since using it | better sleep for a restless sleeper
    My sleep quality has improved noticeably since I started using it.
    I fall asleep faster and my sleep quality is much better.
- heat | builds up quickly, making warm nights uncomfortable | a blanket for hot sleepers
    It traps a lot of heat, so summer nights are too warm.
    Heat builds up quickly under it, which is hard for hot sleepers.
+ cover | is machine washable | a blanket that is easy to wash
    The cover is soft and goes straight in the washing machine.
    I love that the cover is removable and washable.

## CottonCloud Bath Towels | home | train
- absorbency | is poor and leaves you damp | towels that dry you quickly
    Absorbency is poor, and I'm still damp after drying off.
    The absorbency is disappointing for towels this thick.
- shedding | leaves lint everywhere, even after several washes | lint-free towels
    Shedding is terrible, with lint all over my dark clothes.
    After five washes the shedding still hasn't stopped.
+ softness | is lovely, especially fresh from the dryer | very soft towels
    Softness is the one thing they get right.
    The softness is lovely when they're fresh out of the dryer.
- drying time | is long, so they stay damp for hours | towels that dry fast in a humid bathroom
    Drying time is long, and they stay damp on the rack for hours.
    In our humid bathroom the drying time is so long that they start to smell.

## PlugPal Smart Plug | home | train
+ setup | takes a couple of minutes in the app | an easy first smart home device
    Setup took two minutes per plug in the app.
    The setup was painless, even for someone who isn't into smart home gadgets.
+ voice assistant support | works reliably with no missed commands | voice control for their lamps
    Voice assistant support works perfectly, and I turn the lamps on by voice.
    The voice assistant support is reliable, with no missed commands so far.
+ schedules | run reliably every day | lights that switch on automatically in the evening
    The schedules run like clockwork every evening.
    I set schedules for our holiday lights and never touch them.
- size | blocks the neighbouring outlet | a plug that leaves the other outlet free
    The size is a problem, because it blocks the second outlet.
    Its size means I can't use both sockets on the wall plate.

## MistAir Ultrasonic Humidifier | home | eval
- tank | is awkward to fill and leaks | a humidifier that is easy and clean to refill
    The tank is awkward to fill and leaks onto the nightstand.
    Water drips from the tank every time I carry it from the sink.
- cleaning | is difficult | a low-maintenance humidifier
    Cleaning is a pain, since my hand doesn't fit through the opening.
    Mold started to build up because cleaning the base is so difficult.
+ mist output | is strong | strong humidity for a large bedroom
    The mist output is strong on high.
    Mist output is good enough to humidify our large bedroom.
- noise | includes a gurgling that disturbs sleep | a quiet humidifier for a bedroom
    The noise of the constant gurgling kept me awake.
    It makes a loud gurgling noise every few minutes all night.
- auto shut-off | is unreliable | a safe humidifier for overnight use
    The auto shut-off failed once and it ran dry.
    I don't trust the auto shut-off anymore.

## SonicWave Electric Toothbrush | personal care | train
+ cleaning | leaves teeth feeling dentist-clean | a deep clean for plaque-prone teeth
    Cleaning is excellent, and my teeth feel like I just left the dentist.
    My dentist noticed the better cleaning at my last checkup.
+ battery life | lasts weeks per charge | a toothbrush for travel without a charger
    Battery life is about three weeks per charge.
    The battery life is great for travel, since I don't pack the charger.
+ timer | helps pace a full two minutes of brushing | a built-in timer for two-minute brushing
    The timer buzzes every 30 seconds so I brush each section evenly.
    I like the two-minute timer, which keeps my kids honest too.
- replacement heads | are expensive compared to other brands | cheap replacement heads
    Replacement heads are expensive compared to other brands.
    The replacement heads cost almost as much as a cheap manual brush every month.

## AirLuxe Ionic Hair Dryer | personal care | eval
+ drying speed | is fast | fast drying for thick hair
    Drying speed is great, and my thick hair is dry in ten minutes.
    I've cut my morning routine in half thanks to the drying speed.
+ frizz control | leaves hair smoother, even on humid days | a dryer that reduces frizz
    Frizz control is noticeable, and my hair is smoother than with my old dryer.
    The frizz control works even on humid days.
- weight | makes the arm tired before drying is done | a light dryer that is easy to hold
    The weight makes my arm tired before I'm done.
    It's heavy, and the weight is hard to manage with long hair.
- cord | is too short | a long cord for a bathroom with a distant outlet
    The cord is short and stiff, so I have to stand right next to the outlet.
    I wish the cord were longer, because it barely reaches my mirror.

## EdgeLine Beard Trimmer | personal care | train
+ precision | is excellent for clean lines | precise beard lines
    Precision is excellent for shaping the neckline.
    The precision of the blade gives me clean, even lines.
+ length settings | cover everything from stubble to a longer beard | many length settings
    The length settings go from stubble to a longer beard.
    I use three of the length settings and switching is easy.
- guard | slips off during trimming | a trimmer with guards that stay on
    The guard slips off mid-trim, which ruined my beard once.
    The plastic guard feels cheap and pops off if you press too hard.
- battery indicator | is vague and gives no warning before it dies | a clear warning before the battery runs out
    The battery indicator is vague, so it dies without warning.
    There's no real battery indicator, just a single light that blinks at the end.

## GentlePure Foaming Facial Cleanser | personal care | train
+ gentleness | does not irritate even sensitive skin | a cleanser for sensitive skin
    Gentleness is the big win, as my sensitive skin doesn't react at all.
    I have rosacea, and the gentleness really shows.
+ makeup removal | works well for everyday makeup | a cleanser that removes everyday makeup
    Makeup removal works well for my everyday foundation.
    It handles makeup removal fine, except for waterproof mascara.
- scent | is strong and unpleasant | an unscented cleanser
    The scent is strong and perfumy for a sensitive-skin product.
    I don't like the scent, which lingers after rinsing.
+ pump | dispenses just the right amount of rich foam | an easy foam pump for quick routines
    The pump dispenses just the right amount of foam.
    I like the pump, which makes a rich foam instantly.

## SunShield SPF 50 Sunscreen | personal care | train
+ protection | prevents sunburn even on long days outside | strong sun protection for beach days
    Protection is excellent, and I didn't burn after a full day at the beach.
    The protection held up through a day of hiking at altitude.
- white cast | is noticeable and hard to rub in | a sunscreen that leaves no white cast
    The white cast is obvious on my brown skin.
    It leaves a white cast that takes ages to rub in.
- texture | is heavy and greasy | a light texture that works under makeup
    The texture is thick and greasy under makeup.
    I dislike the texture, which feels sticky all day.
+ water resistance | holds up through swimming | sunscreen that lasts while swimming
    Water resistance is good, and it stayed on through an hour of swimming.
    The water resistance held up while snorkeling.

## SilkRoot Repair Shampoo | personal care | train
+ scent | is fresh and pleasant | a shampoo with a pleasant scent
    The scent is fresh and lasts all day.
    I really like the scent, which is light and clean.
- conditioning | is weak, leaving hair dry and tangled | a shampoo that leaves damaged hair soft
    Conditioning is weak, and my hair feels dry and tangled afterward.
    I need conditioner every time because the conditioning is so poor.
- lather | is thin, so a lot of product is needed | a rich lather that makes the bottle last
    The lather is thin, so I use a lot of product.
    It barely makes any lather, and the bottle runs out fast.
- price | is high for what you get | an affordable everyday shampoo
    The price is high for such a small bottle.
    At this price I expected much better results.

## BrickWorld 500-Piece Building Set | toys | train
+ instructions | are clear and easy to follow | a set a child can build alone from instructions
    The instructions are clear enough for my seven-year-old to follow alone.
    We loved the step-by-step instructions with color pictures.
+ piece quality | matches the big brands, with bricks that click together snugly | bricks that click together reliably
    Piece quality is great, and they click together snugly.
    The piece quality matches the big-name brands.
+ play value | is high, since the pieces work for endless new builds | a toy that keeps kids busy for weeks
    Play value is high, since the kids rebuild it into new things every day.
    The play value is excellent because the pieces work for endless builds.
- storage box | is flimsy cardboard that falls apart | a sturdy box to store the pieces
    The storage box is flimsy cardboard that ripped in a week.
    I wish the storage box were plastic, because ours fell apart.

## TurboTrack RC Stunt Car | toys | eval
- battery life | runs out very quickly | long play sessions between charges
    Battery life is only about ten minutes, and then it needs an hour to recharge.
    My son was disappointed by the battery life, which ran out before he'd learned the controls.
- durability | is poor, with parts breaking within days | a tough toy for rough play
    Durability is poor, and a wheel snapped off on the second day.
    After a few bumps into the wall the bumper cracked, so durability is clearly a problem.
+ speed | is exciting, especially on smooth floors | a fast car for older kids
    The speed is exciting, and it flies across the driveway.
    Kids love the speed, especially on smooth floors.
- remote range | is short, losing signal after a few meters | control across a big backyard
    The remote range is short, and it loses signal after a few meters.
    It keeps losing connection because the remote range is so limited.

## Snuggle Bear Plush Toy | toys | train
+ softness | is wonderful and everyone notices it | a soft cuddly toy for a toddler
    The softness is wonderful, and my daughter sleeps with it every night.
    Everyone who picks it up comments on the softness.
+ stitching | is sturdy and survives rough play | a toy that survives a toddler's rough love
    The stitching is sturdy after months of being dragged around.
    I checked the stitching carefully, and nothing is loose or coming apart.
+ washability | is great, so it comes out of the machine looking new | a toy that can go in the washing machine
    Washability is great, and it came out of the machine looking new.
    The washability matters with toddlers, and it survived several washes.
- size | is smaller than it looks in the photos | a big plush to hug
    The size is smaller than it looks in the photos.
    I was a little surprised by the size, which is smaller than expected.

## Harbor Lights Board Game | toys | eval
+ rules | are easy to learn in one round | a game that is quick to learn
    The rules are easy to learn, and we were playing within ten minutes.
    Even my grandparents picked up the rules in one round.
+ replay value | is high | a game the family will not get bored of
    Replay value is high, since the board changes every game.
    We've played it twenty times and the replay value is still great.
+ components | are sturdy and well made, with thick tiles and wooden ships | high-quality pieces that last
    The components are beautiful, with thick tiles and wooden ships.
    I love the components, which feel sturdy and well made.
- player count | matters, since the game feels dull with only two players | a game that works well for two players
    The player count matters, and with only two players it feels dull.
    It shines with four, but at a two-player count it is disappointing.
+ game length | is just right for a weeknight | a game that fits into a weeknight evening
    Game length is about 45 minutes, perfect for a weeknight.
    The game length is just right, so we often play twice in a row.

## TimberTots Wooden Animal Puzzle | toys | train
+ wood quality | is smooth, with no splinters | a safe wooden toy for a toddler
    The wood quality is excellent, smooth with no splinters.
    I'm impressed by the wood quality for the price.
+ colors | are bright and have not faded | bright colors to hold a toddler's attention
    The colors are bright, and my son loves naming them.
    The colors are vivid and haven't faded.
- difficulty | is too low for children past about two | a challenging puzzle for a four-year-old
    The difficulty is too low for my four-year-old, who finished it in a minute.
    It's only good for toddlers, since the difficulty is too easy past age two.
- paint | chips on the edges | a toy whose paint holds up to chewing
    The paint chipped on the edges within a week.
    I noticed the paint chipping where my toddler chewed on a piece.

## ColorSplash Kids' Art Kit | toys | train
- markers | dry out within weeks, some already on arrival | markers that last
    The markers dried out within a couple of weeks.
    Half the markers were already dry when we opened the kit.
- case | has a weak latch, so everything spills out | a case that stays closed when carried
    The case has a weak latch and everything spills out.
    The case fell open in the car and crayons went everywhere.
+ variety | is great, with crayons, pencils, paints and markers in one box | lots of different art supplies in one set
    The variety is great, with crayons, pencils, paints and markers.
    My kids like the variety of tools in one box.
- paper quality | is thin, so it tears when wet | paper that works with paint
    Paper quality is thin, and it tears when wet.
    The paper quality is too poor for the included watercolors.

## ZenGrip Yoga Mat | fitness | eval
+ grip | stays grippy even in sweaty hot yoga | a non-slip mat for hot yoga
    The grip is fantastic, even in a sweaty hot yoga class.
    I never slip in downward dog because the grip is so good.
+ cushioning | is comfortable for the knees | cushioning for sensitive knees
    Cushioning is perfect, thick enough for my knees but still stable.
    The cushioning makes kneeling poses comfortable.
- smell | is strongly rubbery for the first days | a mat with no smell out of the box
    The rubber smell was strong for the first week.
    There's a smell that took a few days of airing out to fade.
+ durability | shows no wear after months of daily use | a mat that holds up to daily practice
    Durability is great, with no wear after six months of daily use.
    I practice daily, and the durability has been excellent.

## FlexSet Adjustable Dumbbells | fitness | train
+ weight range | is wide enough to replace a whole rack | a wide weight range that replaces a full rack
    The weight range replaces a whole rack of dumbbells.
    I like the weight range from 2 to 24 kg.
+ adjustment mechanism | changes the weight in seconds | quick weight changes between sets
    The adjustment mechanism changes the weight in seconds.
    Switching weights is fast thanks to the dial adjustment mechanism.
- plates | rattle with every rep | a quiet dumbbell for home workouts
    The plates rattle with every rep.
    I find the rattle of the plates distracting during presses.
- handle | is bulky and gets in the way on some moves | a compact grip for curls
    The handle is bulky and gets in the way during curls.
    The long handle makes some exercises awkward.

## StrideMax Running Shoes | fitness | train
+ cushioning | is plush but responsive on long runs | cushioning for long-distance training
    Cushioning is plush but still responsive on long runs.
    My knees feel better thanks to the cushioning.
+ breathability | keeps feet cool in summer | breathable shoes for summer running
    Breathability is great, and my feet stay cool in summer.
    The mesh upper gives great breathability.
+ weight | is so low that they feel fast | light shoes for faster runs
    The weight is so low that I forget they're on.
    At this weight they feel fast in tempo runs.
- sizing | runs small | shoes that fit true to size
    Sizing runs half a size small, so order up.
    The sizing is off, and I had to exchange them for a bigger pair.

## DeepRelief Foam Roller | fitness | train
+ firmness | works well on tight, sore spots | firm pressure for deep tissue release
    The firmness is great for working out tight calves.
    I like the firmness, which really gets into sore spots.
- surface | is slippery | a roller that stays in place on hard floors
    The surface is slippery on my wooden floor.
    Its smooth surface slides around on the mat.
- durability | is poor, as it flattens within weeks | a roller that keeps its shape
    Durability is poor, and it has already flattened in one spot.
    After a month it lost its shape, so durability is a real issue.
- length | is too short to roll the whole back | a roller long enough for the upper back
    The length is too short to roll my whole back.
    It's a nice size for travel, but the length is too short for back exercises.

## PowerLoop Resistance Bands | fitness | train
+ resistance levels | cover everything from rehab to heavy squats | a range of resistance for progressive training
    The resistance levels cover everything from rehab to heavy squats.
    I like the five resistance levels, which are clearly color coded.
+ portability | makes them easy to pack for travel | equipment that packs into a carry-on
    Portability is excellent, and they fit in my travel bag.
    The portability is perfect for hotel workouts.
- durability | is a concern, with bands snapping or tearing | bands that hold up to heavy use
    Durability is a concern, and one band snapped after three weeks.
    The durability worries me, since the latex already shows small tears.
- carrying bag | is flimsy | a sturdy bag to store the bands
    The carrying bag is flimsy and tore in a week.
    The carrying bag feels like an afterthought.
"""

OPENERS = {
    "any": [
        "I've been using it for about three weeks now.",
        "Bought this after my old one finally gave up.",
        "I ordered this after reading a lot of reviews.",
        "We've had it for a couple of months.",
        "I picked this up on sale last month.",
        "Got this as a birthday present.",
    ],
    "electronics": ["I've used it every day for about a month.", "Upgraded to this from a cheaper model."],
    "kitchen": ["I use it almost every day in our small kitchen.", "Bought this to replace an old one."],
    "outdoor": ["Took it on a three-day trip in the mountains.", "I've used it on several weekend trips."],
    "home": ["We've had it at home for a few weeks.", "Bought this for our new apartment."],
    "personal care": ["I've been using it every morning for a month.", "Switched to this from my usual brand."],
    "toys": ["Bought this for my son's birthday.", "Got this for my niece and nephew."],
    "fitness": ["I've trained with it for about six weeks.", "Bought this for my home workouts."],
}
CLOSERS = {
    5: ["Would buy it again without hesitation.", "Highly recommend.", "Five stars from me.",
        "Really happy with this purchase.", "Best purchase I've made this year."],
    "pos": ["Really happy with it overall.", "Would recommend it.", "Great value overall."],
    4: ["Still a very good buy overall.", "Four stars, and I'd still recommend it.",
        "Overall I'm happy with it."],
    3: ["It's okay, just not amazing.", "Decent, but I expected a bit more.",
        "Three stars: some good, some bad.", "Average overall for the price."],
    "neg": ["I'm sending it back.", "Would not buy again.", "Really disappointed.",
            "Save your money.", "Not worth the price."],
}
CONNECT = {
    "con": ["That said, ", "However, ", "On the downside, "],
    "pro": ["To be fair, ", "On the plus side, "],
}


# ---------------------------------------------------------------------------------------------
# Corpus parsing and review composition
# ---------------------------------------------------------------------------------------------
def parse_corpus(text: str) -> list[dict]:
    products: list[dict] = []
    feature = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("## "):
            name, category, split = (part.strip() for part in line[3:].split("|"))
            products.append({"name": name, "category": category, "split": split, "features": []})
        elif line[0] in "+-":
            phrase, gist, need = (part.strip() for part in line[1:].split("|"))
            feature = {"name": phrase, "strength": line[0] == "+", "gist": gist, "need": need,
                       "sentences": []}
            products[-1]["features"].append(feature)
        else:
            sentence = line.strip()
            if phrase_key(feature["name"]) not in sentence.lower():
                raise SystemExit(f"corpus: feature {feature['name']!r} missing from {sentence!r}")
            feature["sentences"].append(sentence)
    for p in products:
        if not 3 <= len(p["features"]) <= 5:
            raise SystemExit(f"corpus: {p['name']} has {len(p['features'])} features")
        for f in p["features"]:
            if len(f["sentences"]) < 2:
                raise SystemExit(f"corpus: {p['name']} / {f['name']} needs two sentences")
    return products


def phrase_key(name: str) -> str:
    return name.lower()


def lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or (len(first) > 1 and first[1].isupper()):
        return sentence
    return sentence[0].lower() + sentence[1:]


# (positive mentions, negative mentions) -> star rating; None = random choice
PLANS = {
    "pos": [(2, 0), (1, 0), (2, 1), (2, 0)],
    "neu": [(1, 1)],
    "neg": [(0, 2), (0, 1), (1, 2), (0, 2)],
}


def rating_for(plan: tuple[int, int], rng: random.Random) -> int:
    pos, neg = plan
    if neg == 0:
        return 5 if pos >= 2 else rng.choice([4, 5])
    if pos == 0:
        return 1 if neg >= 2 else rng.choice([1, 2])
    if pos > neg:
        return 4
    if pos == neg:
        return 3
    return 2


def make_reviews(product: dict, rng: random.Random) -> list[dict]:
    pools = {id(f): list(f["sentences"]) for f in product["features"]}
    for f in product["features"]:
        rng.shuffle(pools[id(f)])
    strengths = [f for f in product["features"] if f["strength"]]
    weaknesses = [f for f in product["features"] if not f["strength"]]
    ratio = len(strengths) / len(product["features"])
    target = rng.choice([4, 5, 5, 6])

    def pick(candidates: list[dict], k: int) -> list[dict] | None:
        available = [f for f in candidates if pools[id(f)]]
        if len(available) < k:
            return None
        rng.shuffle(available)
        available.sort(key=lambda f: -len(pools[id(f)]))  # stable: prefer unused features
        return available[:k]

    reviews: list[dict] = []
    attempts = 0
    while len(reviews) < target and attempts < 60:
        attempts += 1
        weights = {"pos": ratio, "neg": 1 - ratio, "neu": 0.3 if strengths and weaknesses else 0}
        kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        plan = rng.choice(PLANS[kind])
        pos_f = pick(strengths, plan[0])
        neg_f = pick(weaknesses, plan[1])
        if pos_f is None or neg_f is None:
            continue
        rating = rating_for(plan, rng)
        # Compose the body; connectors attach the minority polarity.
        if kind == "neu":
            if rng.random() < 0.5:
                parts = [(pos_f[0], None), (neg_f[0], rng.choice(CONNECT["con"]))]
            else:
                parts = [(neg_f[0], None), (pos_f[0], rng.choice(CONNECT["pro"]))]
        elif rating >= 4:
            parts = [(f, None) for f in pos_f]
            parts += [(f, rng.choice(CONNECT["con"])) for f in neg_f]
        else:
            parts = [(f, None) for f in neg_f]
            parts += [(f, rng.choice(CONNECT["pro"])) for f in pos_f]
        sentences, mentions = [], []
        for f, prefix in parts:
            s = pools[id(f)].pop()
            sentences.append(prefix + lower_first(s) if prefix else s)
            mentions.append({"feature": f["name"], "polarity": "positive" if f["strength"] else "negative"})
        if len(sentences) <= 2 and rng.random() < 0.75:
            cat = product["category"]
            sentences.insert(0, rng.choice(OPENERS["any"] + OPENERS[cat] * 2))
        if rating == 5:
            closer = rng.choice(CLOSERS[5])
        elif rating == 4:
            closer = rng.choice(CLOSERS[4] if plan[1] else CLOSERS["pos"])
        elif rating == 3:
            closer = rng.choice(CLOSERS[3])
        else:
            closer = rng.choice(CLOSERS["neg"])
        sentences.append(closer)
        reviews.append({"rating": rating, "text": " ".join(sentences), "mentions": mentions})
    if len(reviews) < 4:
        raise SystemExit(f"corpus: only {len(reviews)} reviews could be made for {product['name']}")
    return reviews


def build_corpus(rng: random.Random) -> list[dict]:
    products = parse_corpus(CORPUS)
    for i, p in enumerate(products, 1):
        p["product_id"] = f"p{i:02d}"
        p["reviews"] = make_reviews(p, rng)
        for j, r in enumerate(p["reviews"], 1):
            r["review_id"] = f"{p['product_id']}-r{j}"
        p["by_name"] = {f["name"]: f for f in p["features"]}
    return products


def product_row(p: dict) -> dict:
    return {
        "product_id": p["product_id"],
        "name": p["name"],
        "category": p["category"],
        "split": p["split"],
        "features": [f["name"] for f in p["features"]],
        "feature_verdicts": [
            {"feature": f["name"], "verdict": "strength" if f["strength"] else "weakness",
             "summary": f"The {f['name']} {f['gist']}."}
            for f in p["features"]
        ],
        "reviews": [
            {"review_id": r["review_id"], "rating": r["rating"], "text": r["text"],
             "mentions": r["mentions"]}
            for r in p["reviews"]
        ],
    }


# ---------------------------------------------------------------------------------------------
# Prompt composition
# ---------------------------------------------------------------------------------------------
def join_and(items: list[str]) -> str:
    """Join phrases as English; clauses that contain commas are separated by semicolons."""
    if len(items) == 1:
        return items[0]
    if any("," in item for item in items):
        return "; ".join(items[:-1]) + f"; and {items[-1]}"
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def the(names: list[str]) -> str:
    return join_and([f"the {n}" for n in names])


def which(p: dict, name: str) -> str:
    return f"the {name}, which {p['by_name'][name]['gist']}"


def single_context(p: dict, r: dict) -> str:
    return f"Product: {p['name']}\nReview: {r['text']}"


def multi_context(p: dict, reviews: list[dict]) -> str:
    lines = [f"Product: {p['name']}"]
    for i, r in enumerate(reviews, 1):
        lines.append(f"Review {i} ({r['rating']}/5 stars): {r['text']}")
    return "\n".join(lines)


def mentions_in(reviews: list[dict]) -> list[dict]:
    """Distinct feature mentions in reading order, with how many reviews mention each."""
    seen: dict[str, dict] = {}
    for r in reviews:
        for m in r["mentions"]:
            entry = seen.setdefault(m["feature"], {"feature": m["feature"], "polarity": m["polarity"], "count": 0})
            entry["count"] += 1
    return list(seen.values())


def sentiment_of(r: dict) -> str:
    return "positive" if r["rating"] >= 4 else "negative" if r["rating"] <= 2 else "neutral"


SENT_TEXTS = [
    "What is the sentiment of this review? Answer positive, negative or neutral.",
    "Classify the sentiment of the review below as positive, negative or neutral.",
    "Is this customer review positive, negative or neutral?",
    "Read the review and tell me whether the customer's sentiment is positive, negative or neutral.",
    "What is the overall tone of this review: positive, negative or neutral?",
]


def sentiment_reference(r: dict) -> str:
    pos = [m["feature"] for m in r["mentions"] if m["polarity"] == "positive"]
    neg = [m["feature"] for m in r["mentions"] if m["polarity"] == "negative"]
    label = sentiment_of(r)
    if label == "positive":
        if neg:
            return f"Positive. The reviewer praises {the(pos)}; {the(neg)} is only a minor complaint."
        if len(pos) == 1:
            return f"Positive. The reviewer praises {the(pos)} and is happy with the purchase."
        return f"Positive. The reviewer praises {the(pos)}."
    if label == "negative":
        if pos:
            return f"Negative. The reviewer complains about {the(neg)}; {the(pos)} is the only positive."
        if len(neg) == 1:
            return f"Negative. The reviewer complains about {the(neg)} and is unhappy with the purchase."
        return f"Negative. The reviewer complains about {the(neg)}."
    return f"Neutral. The reviewer likes {the(pos)} but is disappointed by {the(neg)}, so the review is mixed."


def gen_sentiment(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    buckets: dict[str, list] = {"positive": [], "negative": [], "neutral": []}
    for p in products:
        for r in p["reviews"]:
            buckets[sentiment_of(r)].append((p, r))
    quota = {"positive": round(n * 0.4), "negative": round(n * 0.4)}
    quota["neutral"] = n - quota["positive"] - quota["negative"]
    chosen = []
    for label in ("positive", "negative", "neutral"):
        pool = buckets[label][:]
        rng.shuffle(pool)
        chosen += pool[: quota[label]]
    # top up from the largest buckets if one was short
    short = n - len(chosen)
    if short:
        used = {id(r) for _, r in chosen}
        rest = [(p, r) for lbl in ("negative", "positive", "neutral") for p, r in buckets[lbl] if id(r) not in used]
        rng.shuffle(rest)
        chosen += rest[:short]
    rng.shuffle(chosen)
    rows = []
    for p, r in chosen:
        rows.append({
            "task": "sentiment",
            "text": rng.choice(SENT_TEXTS),
            "context": single_context(p, r),
            "reference": sentiment_reference(r),
            "label": sentiment_of(r),
        })
    return rows


FEAT_LIST = [
    "Which product features does the reviewer mention?",
    "List the features mentioned in this review.",
    "What aspects of the product does this review talk about?",
]
FEAT_ABOUT = ["What does the reviewer say about the {f}?", "How does the reviewer describe the {f}?"]
FEAT_COMPLAIN = ["What does the reviewer complain about?", "Which feature is the reviewer unhappy with?"]
FEAT_LIKE = ["What does the reviewer like about the product?", "Which feature does the reviewer praise?"]
FEAT_TWO = ["Which features do these two reviewers mention?", "List the features each reviewer mentions."]
FEAT_BOTH = ["What do both reviewers say about the {f}?"]


def opinion(p: dict, name: str, subject: str = "The reviewer") -> str:
    f = p["by_name"][name]
    verb = "praises" if f["strength"] else "is unhappy with"
    if subject.startswith("Both"):
        verb = "praise" if f["strength"] else "are unhappy with"
    return f"{subject} {verb} {which(p, name)}."


def feature_candidates(p: dict, kind: str, rng: random.Random) -> list[dict]:
    out = []
    reviews = p["reviews"]
    for r in reviews:
        names = [m["feature"] for m in r["mentions"]]
        pos = [m["feature"] for m in r["mentions"] if m["polarity"] == "positive"]
        neg = [m["feature"] for m in r["mentions"] if m["polarity"] == "negative"]
        ctx = single_context(p, r)
        if kind == "list" and len(names) >= 2:
            ref = f"The reviewer mentions {the(names)}."
            if pos and neg:
                ref += f" They praise {the(pos)} but criticise {the(neg)}."
            elif pos:
                ref += f" They praise {'both' if len(pos) == 2 else 'all of them'}."
            else:
                ref += f" They criticise {'both' if len(neg) == 2 else 'all of them'}."
            out.append({"text": rng.choice(FEAT_LIST), "context": ctx, "reference": ref, "label": names[0]})
        if kind == "about":
            for n in names:
                out.append({"text": rng.choice(FEAT_ABOUT).format(f=n), "context": ctx,
                            "reference": opinion(p, n), "label": n})
        if kind == "complain" and neg:
            if len(neg) == 1:
                ref = f"The reviewer complains about {which(p, neg[0])}."
            else:
                ref = f"The reviewer complains about {the(neg)}: {join_and([clause(p, n) for n in neg])}."
            out.append({"text": rng.choice(FEAT_COMPLAIN), "context": ctx, "reference": ref, "label": neg[0]})
        if kind == "like" and pos:
            if len(pos) == 1:
                ref = f"The reviewer praises {which(p, pos[0])}."
            else:
                ref = f"The reviewer praises {the(pos)}: {join_and([clause(p, n) for n in pos])}."
            out.append({"text": rng.choice(FEAT_LIKE), "context": ctx, "reference": ref, "label": pos[0]})
    if kind in ("two", "both"):
        for i in range(len(reviews)):
            for j in range(i + 1, len(reviews)):
                a, b = reviews[i], reviews[j]
                ctx = multi_context(p, [a, b])
                if len(ctx) > MAX_CONTEXT:
                    continue
                na = [m["feature"] for m in a["mentions"]]
                nb = [m["feature"] for m in b["mentions"]]
                shared = [n for n in na if n in nb]
                if kind == "two" and not shared:
                    ref = (f"The first reviewer mentions {the(na)}; the second reviewer mentions {the(nb)}.")
                    out.append({"text": rng.choice(FEAT_TWO), "context": ctx, "reference": ref, "label": na[0]})
                if kind == "both" and shared:
                    n = shared[0]
                    out.append({"text": FEAT_BOTH[0].format(f=n), "context": ctx,
                                "reference": opinion(p, n, "Both reviewers"), "label": n})
    return out


FEATURE_MIX = {"list": 0.24, "about": 0.24, "complain": 0.2, "like": 0.16, "two": 0.08, "both": 0.08}


def gen_features(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    counts = {k: max(1, round(n * w)) for k, w in FEATURE_MIX.items()}
    diff = n - sum(counts.values())
    counts["about"] += diff
    rows = []
    for kind, k in counts.items():
        pool = [c for p in products for c in feature_candidates(p, kind, rng)]
        rng.shuffle(pool)
        rows += pool[:k]
        if len(pool) < k:
            raise SystemExit(f"features/{kind}: only {len(pool)} candidates for {k}")
    rng.shuffle(rows)
    return [{"task": "features", **r} for r in rows]


REC_TEXTS = [
    "Based on these reviews, would you recommend the {name} to someone who needs {need}? Answer yes or no and explain.",
    "I'm looking for {need}. Based on these reviews, should I buy the {name}? Answer yes or no and explain.",
    "Would the {name} be a good choice for someone who needs {need}? Answer yes or no based on the reviews.",
]


def pick_reviews(p: dict, must: list[dict], rng: random.Random, want: int) -> list[dict] | None:
    """`must` reviews plus random others up to `want`, within MAX_CONTEXT."""
    chosen = list(must)
    others = [r for r in p["reviews"] if r not in chosen]
    rng.shuffle(others)
    for r in others:
        if len(chosen) >= want:
            break
        if len(multi_context(p, chosen + [r])) <= MAX_CONTEXT:
            chosen.append(r)
    if len(multi_context(p, chosen)) > MAX_CONTEXT:
        return None
    rng.shuffle(chosen)
    return chosen


def gen_recommendation(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    cands = {"yes": [], "no": []}
    for p in products:
        for f in p["features"]:
            mentioning = [r for r in p["reviews"] if any(m["feature"] == f["name"] for m in r["mentions"])]
            if not mentioning:
                continue
            cands["yes" if f["strength"] else "no"].append((p, f, mentioning))
    quota = {"yes": n // 2, "no": n - n // 2}
    rows = []
    for label in ("yes", "no"):
        pool = cands[label][:]
        rng.shuffle(pool)
        made = 0
        for p, f, mentioning in pool:
            if made >= quota[label]:
                break
            must = mentioning[:2]
            reviews = pick_reviews(p, must, rng, want=rng.choice([2, 3]))
            if reviews is None:
                reviews = pick_reviews(p, must[:1], rng, want=2)
            if reviews is None or len(reviews) < 2:
                continue
            ctx_mentions = mentions_in(reviews)
            count = next(m["count"] for m in ctx_mentions if m["feature"] == f["name"])
            who = "Reviewers say" if count > 1 else "One reviewer says"
            if label == "yes":
                ref = (f"Yes. {who} the {f['name']} {f['gist']}. That makes it a good fit for someone "
                       f"who needs {f['need']}.")
                cons = [m["feature"] for m in ctx_mentions if m["polarity"] == "negative"]
                if cons:
                    ref += f" The main drawback mentioned is that the {cons[0]} {p['by_name'][cons[0]]['gist']}."
            else:
                ref = (f"No. {who} the {f['name']} {f['gist']}. That makes it a poor fit for someone "
                       f"who needs {f['need']}.")
                pros = [m["feature"] for m in ctx_mentions if m["polarity"] == "positive"]
                if pros:
                    ref += f" Reviewers do praise the {pros[0]}, but that does not make up for it."
            rows.append({
                "task": "recommendation",
                "text": rng.choice(REC_TEXTS).format(name=p["name"], need=f["need"]),
                "context": multi_context(p, reviews),
                "reference": ref,
                "label": label,
            })
            made += 1
        if made < quota[label]:
            raise SystemExit(f"recommendation/{label}: only {made} of {quota[label]}")
    rng.shuffle(rows)
    return rows


def clause(p: dict, name: str) -> str:
    return f"the {name} {p['by_name'][name]['gist']}"


def relevance_candidate(p: dict, kind: str, rng: random.Random) -> dict | None:
    name = p["name"]
    if kind == "about":
        feats = [f for f in p["features"]
                 if any(m["feature"] == f["name"] for r in p["reviews"] for m in r["mentions"])]
        f = rng.choice(feats)
        must = [r for r in p["reviews"] if any(m["feature"] == f["name"] for m in r["mentions"])][:2]
        reviews = pick_reviews(p, must, rng, want=3)
        if reviews is None:
            return None
        count = next(m["count"] for m in mentions_in(reviews) if m["feature"] == f["name"])
        subject = "Both reviewers who mention it" if count == 2 else "One reviewer"
        verb = ("praise" if count == 2 else "praises") if f["strength"] else (
            "are unhappy with" if count == 2 else "is unhappy with")
        others = [m["feature"] for m in mentions_in(reviews) if m["feature"] != f["name"]]
        ref = f"{subject} {verb} {which(p, f['name'])}."
        if others:
            ref += f" The other reviews focus on {the(others[:2])} instead."
        text = rng.choice([f"What do buyers say about the {f['name']} of the {name}?",
                           f"How do customers rate the {f['name']} of the {name}?"])
        return {"text": text, "context": multi_context(p, reviews), "reference": ref, "label": ""}
    reviews = pick_reviews(p, [], rng, want=3)
    if reviews is None:
        return None
    ms = mentions_in(reviews)
    pos = [m["feature"] for m in ms if m["polarity"] == "positive"]
    neg = [m["feature"] for m in ms if m["polarity"] == "negative"]
    if kind == "complaints":
        if not neg:
            return None
        if len(neg) == 1:
            ref = f"The main complaint is that {clause(p, neg[0])}."
        else:
            ref = f"The main complaints are that {join_and([clause(p, n) for n in neg[:3]])}."
        if pos:
            ref += f" Reviewers are happier with {the(pos[:2])}."
        text = rng.choice([f"Summarise the main complaints about the {name}.",
                           f"What problems do buyers report with the {name}?"])
    elif kind == "likes":
        if not pos:
            return None
        if len(pos) == 1:
            ref = f"Reviewers like {which(p, pos[0])}."
        else:
            ref = f"Reviewers like {the(pos[:3])}: {join_and([clause(p, n) for n in pos[:3]])}."
        if neg:
            ref += f" The main criticism is that {clause(p, neg[0])}."
        text = rng.choice([f"What do reviewers like most about the {name}?",
                           f"What are the strongest points of the {name} according to buyers?"])
    elif kind == "proscons":
        if not pos or not neg:
            return None
        ref = (f"Pros: {join_and([clause(p, n) for n in pos[:3]])}. "
               f"Cons: {join_and([clause(p, n) for n in neg[:3]])}.")
        text = f"What are the pros and cons of the {name} according to these reviews?"
    elif kind == "summary":
        avg = sum(r["rating"] for r in reviews) / len(reviews)
        tone = ("Customers are mostly positive" if avg >= 3.5 else
                "Customers are mostly negative" if avg <= 2.5 else "Opinions are mixed")
        ref = f"{tone} (average {avg:.1f}/5 across these reviews)."
        if pos:
            ref += f" Reviewers praise {the(pos[:3])}."
        if neg:
            ref += f" The main complaint is that {clause(p, neg[0])}."
        text = rng.choice([f"Summarise what customers think of the {name}.",
                           f"Give a short overview of the reviews for the {name}."])
    elif kind == "verdict":
        f = rng.choice([p["by_name"][m] for m in pos + neg] or [None])
        if f is None:
            return None
        word = "A strength" if f["strength"] else "A weakness"
        ref = f"{word}: reviewers say {clause(p, f['name'])}."
        text = f"Is the {f['name']} a strength or a weakness of the {name}, according to its reviews?"
    else:
        raise ValueError(kind)
    return {"text": text, "context": multi_context(p, reviews), "reference": ref, "label": ""}


RELEVANCE_MIX = {"about": 0.2, "complaints": 0.2, "likes": 0.16, "proscons": 0.16, "summary": 0.16, "verdict": 0.12}


def gen_relevance(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    counts = {k: max(1, round(n * w)) for k, w in RELEVANCE_MIX.items()}
    counts["summary"] += n - sum(counts.values())
    rows, seen = [], set()
    for kind, k in counts.items():
        made, tries = 0, 0
        order = products[:]
        while made < k and tries < 40 * k:
            if tries % len(order) == 0:
                rng.shuffle(order)
            p = order[tries % len(order)]
            tries += 1
            c = relevance_candidate(p, kind, rng)
            if c is None or (c["text"], c["context"]) in seen:
                continue
            seen.add((c["text"], c["context"]))
            rows.append({"task": "relevance", **c})
            made += 1
        if made < k:
            raise SystemExit(f"relevance/{kind}: only {made} of {k}")
    rng.shuffle(rows)
    return rows


def build_split(products: list[dict], per_task: int, prefix: str | None, rng: random.Random) -> list[dict]:
    rows = []
    rows += gen_sentiment(products, per_task, rng)
    rows += gen_features(products, per_task, rng)
    rows += gen_recommendation(products, per_task, rng)
    rows += gen_relevance(products, per_task, rng)
    # drop accidental duplicates within the split
    seen, unique = set(), []
    for r in rows:
        key = (r["text"], r["context"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    rows = unique
    if prefix is None:  # eval: ids per task
        short = {"sentiment": "sent", "features": "feat", "recommendation": "rec", "relevance": "rel"}
        counter: Counter = Counter()
        for r in rows:
            counter[r["task"]] += 1
            r["external_id"] = f"{short[r['task']]}-{counter[r['task']]:03d}"
    else:  # train: interleave tasks so any prefix of the file is balanced
        by_task: dict[str, list] = {}
        for r in rows:
            by_task.setdefault(r["task"], []).append(r)
        inter = []
        for i in range(max(len(v) for v in by_task.values())):
            for task in ("sentiment", "features", "recommendation", "relevance"):
                if i < len(by_task.get(task, [])):
                    inter.append(by_task[task][i])
        rows = inter
        for i, r in enumerate(rows, 1):
            r["external_id"] = f"{prefix}-{i:04d}"
    keys = ("external_id", "task", "text", "context", "reference", "label")
    return [{k: r[k] for k in keys} for r in rows]


# ---------------------------------------------------------------------------------------------
# Output and validation
# ---------------------------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


REQUIRED = ("external_id", "task", "text", "context", "reference", "label")
LABELS = {"sentiment": {"positive", "negative", "neutral"}, "recommendation": {"yes", "no"}}
TASKS = ("sentiment", "features", "recommendation", "relevance")


def validate(products_path: Path, eval_path: Path, train_path: Path) -> list[str]:
    errors: list[str] = []
    products = _load_jsonl(products_path, errors)
    errors += _check_products(products)
    eval_rows, train_rows = _load_jsonl(eval_path, errors), _load_jsonl(train_path, errors)
    for name, rows in (("eval", eval_rows), ("train", train_rows)):
        errors += _check_split(name, rows)
    overlap, shared_reviews = _shared_between(eval_rows, train_rows)
    if overlap:
        errors.append(f"{len(overlap)} eval (text, context) pairs also in train")
    if shared_reviews:
        errors.append(f"{len(shared_reviews)} review lines shared between eval and train")

    per_task = {
        "eval": Counter(r["task"] for r in eval_rows),
        "train": Counter(r["task"] for r in train_rows),
    }
    if any(per_task["eval"][t] != EVAL_PER_TASK for t in TASKS):
        errors.append(f"eval: per-task counts {dict(per_task['eval'])}")
    if len(train_rows) < 320:
        errors.append(f"train: {len(train_rows)} rows < 320")

    _print_summary(products, {"eval": eval_rows, "train": train_rows}, per_task)
    print(f"eval/train (text, context) overlap: {len(overlap)}; shared review lines: {len(shared_reviews)}")
    return errors


def _load_jsonl(path: Path, errors: list[str]) -> list[dict]:
    """The rows of a JSONL file; a line that is not JSON is skipped and reported in errors."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"{path.name}:{lineno}: invalid JSON ({exc})")
    return rows


def _check_products(products: list[dict]) -> list[str]:
    errors = []
    if len(products) < 40:
        errors.append(f"products: {len(products)} < 40")
    for p in products:
        if not 3 <= len(p["features"]) <= 5:
            errors.append(f"products: {p['product_id']} has {len(p['features'])} features")
        if not 4 <= len(p["reviews"]) <= 6:
            errors.append(f"products: {p['product_id']} has {len(p['reviews'])} reviews")
        for r in p["reviews"]:
            if not 1 <= r["rating"] <= 5:
                errors.append(f"products: {r['review_id']} rating {r['rating']}")
            n_sent = r["text"].count(". ") + 1
            if not 2 <= n_sent <= 4:
                errors.append(f"products: {r['review_id']} has {n_sent} sentences")
    return errors


def _check_split(name: str, rows: list[dict]) -> list[str]:
    """Duplicates within one split's rows, then each row's fields and label."""
    ids = Counter(r.get("external_id") for r in rows)
    errors = [f"{name}: duplicate external_id {i}" for i, c in ids.items() if c > 1]
    pairs = Counter((r.get("text"), r.get("context")) for r in rows)
    errors += [f"{name}: duplicate (text, context) {t[0][:40]!r}" for t, c in pairs.items() if c > 1]
    for lineno, r in enumerate(rows, 1):
        errors += _check_prompt_row(f"{name}.jsonl:{lineno}", r)
    return errors


def _check_prompt_row(where: str, r: dict) -> list[str]:
    missing = [k for k in REQUIRED if k not in r]
    if missing:
        return [f"{where}: missing {missing}"]
    errors = []
    if not all(isinstance(r[k], str) for k in REQUIRED):
        errors.append(f"{where}: non-string field")
    if not r["text"] or not r["reference"]:
        errors.append(f"{where}: empty text or reference")
    if len(r["context"]) > MAX_CONTEXT:
        errors.append(f"{where}: context {len(r['context'])} chars")
    task, label = r["task"], r["label"]
    if task in LABELS and label not in LABELS[task]:
        errors.append(f"{where}: bad label {label!r} for {task}")
    if task == "sentiment" and not r["reference"].lower().startswith(label + "."):
        errors.append(f"{where}: sentiment reference does not start with the label")
    if task == "recommendation" and not r["reference"].lower().startswith(label + "."):
        errors.append(f"{where}: recommendation reference does not start with the label")
    if task == "features":
        if not label or label != label.lower() or not 1 <= len(label.split()) <= 3:
            errors.append(f"{where}: bad features label {label!r}")
        if label.lower() not in r["context"].lower():
            errors.append(f"{where}: features label {label!r} not in context")
        if label.lower() not in r["reference"].lower():
            errors.append(f"{where}: features label {label!r} not in reference")
    if task == "relevance" and label != "":
        errors.append(f"{where}: relevance label must be empty")
    return errors


def _shared_between(eval_rows: list[dict], train_rows: list[dict]) -> tuple[set, set]:
    """(text, context) pairs, and review lines of the contexts, that occur in both splits."""
    eval_pairs = {(r["text"], r["context"]) for r in eval_rows}
    overlap = eval_pairs & {(r["text"], r["context"]) for r in train_rows}
    eval_ctx_reviews = {line for r in eval_rows for line in r["context"].splitlines()[1:]}
    train_ctx_reviews = {line for r in train_rows for line in r["context"].splitlines()[1:]}
    return overlap, eval_ctx_reviews & train_ctx_reviews


def _print_summary(products: list[dict], splits: dict[str, list[dict]], per_task: dict[str, Counter]) -> None:
    print(f"products: {len(products)} ({Counter(p['split'] for p in products)}), "
          f"reviews: {sum(len(p['reviews']) for p in products)}, "
          f"categories: {dict(Counter(p['category'] for p in products))}")
    ratings = Counter(r["rating"] for p in products for r in p["reviews"])
    print(f"review ratings: {dict(sorted(ratings.items()))}")
    for name, rows in splits.items():
        print(f"{name}: {len(rows)} rows, per task {dict(sorted(per_task[name].items()))}")
        for task in ("sentiment", "recommendation"):
            labels = Counter(r["label"] for r in rows if r["task"] == task)
            print(f"  {task} labels: {dict(sorted(labels.items()))}")
        feats = Counter(r["label"] for r in rows if r["task"] == "features")
        print(f"  features labels: {len(feats)} distinct, most common {feats.most_common(3)}")
        print(f"  context chars: max {max(len(r['context']) for r in rows)}, "
              f"mean {sum(len(r['context']) for r in rows) / len(rows):.0f}")


def main() -> int:
    rng = random.Random(SEED)
    products = build_corpus(rng)
    eval_products = [p for p in products if p["split"] == "eval"]
    train_products = [p for p in products if p["split"] == "train"]
    eval_rows = build_split(eval_products, EVAL_PER_TASK, None, random.Random(SEED + 1))
    train_rows = build_split(train_products, TRAIN_PER_TASK, "train", random.Random(SEED + 2))

    paths = (OUT_DIR / "products.jsonl", OUT_DIR / "eval.jsonl", OUT_DIR / "train.jsonl")
    write_jsonl(paths[0], [product_row(p) for p in products])
    write_jsonl(paths[1], eval_rows)
    write_jsonl(paths[2], train_rows)
    errors = validate(*paths)
    for e in errors:
        print(f"ERROR: {e}", file=sys.stderr)
    print("OK" if not errors else f"{len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
